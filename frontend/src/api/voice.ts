// The voice routes (issue 22): transcribe a recorded clip, speak an answer (streamed audio),
// the stored clips, the voices and the user's default voice. They go through the API client,
// so the session cookie, the one silent refresh on a 401 and the error envelope apply as for
// every other call; the audio answers are read as raw responses (they are not envelopes).
import { api } from "./client";
import type { SpeakIn, TranscribeOut, UserSettingsOut, VoicesOut } from "./types";

export type Transcript = TranscribeOut;
export type VoiceList = VoicesOut;

/** The same cap as the voice service's VOICE_MAX_SPEAK_CHARS: longer text is refused (422). */
export const MAX_SPEAK_CHARS = 4000;

/** The clip's file name: the server keeps the extension for the stored object, so it matters. */
function clipName(mime: string): string {
  const base = mime.split(";")[0]!.trim().toLowerCase();
  const ext = base === "audio/ogg" ? "ogg" : base === "audio/mp4" ? "m4a" : base === "audio/wav" ? "wav" : "webm";
  return `voice.${ext}`;
}

/** Uploads a recording; the transcript to review before sending. Not retried on 5xx: a
 *  second upload would store a second clip. (A multipart body: the typed methods send JSON.) */
export function transcribe(audio: Blob, signal?: AbortSignal): Promise<Transcript> {
  const form = new FormData();
  form.append("file", audio, clipName(audio.type));
  return api.call<Transcript>({ method: "POST", path: "/v1/voice/transcribe", body: form, signal, retries: 0 });
}

/** The streamed `audio/wav` of `text` spoken (read it with lib/pcmStream). */
export function speak(text: string, signal?: AbortSignal): Promise<Response> {
  return api.raw({
    method: "POST",
    path: "/v1/voice/speak",
    body: { text, format: "wav" } satisfies SpeakIn,
    headers: { Accept: "audio/wav" },
    signal,
    retries: 0,
  });
}

const CLIP_URI = /^\/v1\/voice\/clips\/([^/?#]+)\/audio$/;

/** The clip id of a stored clip's URI (only this API's own clip URIs are ever fetched). */
export function clipIdOf(uri: unknown): string | null {
  if (typeof uri !== "string") return null;
  const match = CLIP_URI.exec(uri);
  return match ? decodeURIComponent(match[1]!) : null;
}

/** A stored clip's bytes (owner only). */
export async function clipAudio(clipId: string, signal?: AbortSignal): Promise<Blob> {
  const response = await api.raw({
    method: "GET",
    path: `/v1/voice/clips/${encodeURIComponent(clipId)}/audio`,
    headers: { Accept: "audio/*" },
    signal,
  });
  return response.blob();
}

export function listVoices(): Promise<VoiceList> {
  return api.get("/v1/voice/voices");
}

export function loadSettings(): Promise<UserSettingsOut> {
  return api.get("/v1/me/settings");
}

export function saveDefaultVoice(voice: string | null): Promise<UserSettingsOut> {
  return api.patch("/v1/me/settings", { body: { default_voice: voice } });
}

/** Deletes a recording that was not sent (the user discarded it). Best effort: one the server
 *  keeps (a lost connection) is removed by its hourly sweep of unsent recordings. */
export async function discardClip(clipId: string): Promise<void> {
  await api.delete("/v1/voice/clips/{id}", { path: { id: clipId }, retries: 0 }).catch(() => undefined);
}
