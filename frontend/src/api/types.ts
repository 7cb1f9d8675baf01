// Names for the generated OpenAPI schemas (schema.d.ts is regenerated from
// ../functions/health/openapi.json by `npm run gen:api`; typecheck runs it first, so a field the
// API renames breaks the build here and everywhere these aliases are used).
import type { components } from "./schema";

type S = components["schemas"];

export type UserOut = S["UserOut"];
export type Tokens = S["Tokens"];
export type SessionOut = S["SessionOut"];
export type ConversationOut = S["ConversationOut"];
export type MessageOut = S["MessageOut"];
export type MessagePage = S["MessagePage"];
export type ChatIn = S["ChatIn"];
export type PreferenceCreate = S["PreferenceCreate"];
export type FeedbackOut = S["FeedbackOut"];
export type PreferenceOut = S["PreferenceOut"];
export type LimitsOut = S["LimitsOut"];
export type HealthReport = S["HealthReport"];
export type AdapterOut = S["AdapterOut"];
export type JobOut = S["JobOut"];
export type ContextOut = S["ContextOut"];
export type ArtifactOut = S["ArtifactOut"];
export type UploadOut = S["UploadOut"];
export type ErrorEnvelope = S["ErrorEnvelope"];
export type TranscribeOut = S["TranscribeOut"];
export type VoicesOut = S["VoicesOut"];
export type SpeakIn = S["SpeakIn"];
export type UserSettingsOut = S["UserSettingsOut"];
