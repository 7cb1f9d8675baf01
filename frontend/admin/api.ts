// The admin page's HTTP: same-origin fetch with the session cookies, the envelope, one silent
// refresh on a 401. Self-contained on purpose (importing the app's client would make a module
// shared by both entries, a chunk outside dist/admin/); types come from the generated schema,
// which is erased at build time.
import type { components } from "../src/api/schema";

type S = components["schemas"];
export type AdminUser = S["AdminUserOut"];
export type UserPage = S["UserPage"];
export type UserUpdate = S["UserUpdate"];
export type Chain = S["ChainOut"];
export type Health = S["HealthReport"];
export type AdminJob = S["AdminJobOut"];
export type AdminJobPage = S["AdminJobPage"];
export type JobStatus = AdminJob["status"];
export type AdminAdapter = S["AdminAdapterOut"];
export type AdminAdapterPage = S["AdminAdapterPage"];
export type AdminAdapterDetail = S["AdminAdapterDetail"];
export type AdapterVersion = S["VersionOut"];
// ConfigOps patches (functions/config) and clusters (functions/cluster).
export type Patch = S["PatchOut"];
export type PatchPage = S["PatchPage"];
export type PatchPreview = S["PreviewOut"];
export type PatchStatus = Patch["status"];
export type Artifact = S["ArtifactOut"];
export type ArtifactVersion = S["ArtifactVersionOut"];
export type ArtifactVersionPage = S["ArtifactVersionPage"];
export type AdminCluster = S["AdminClusterOut"];
export type AdminClusterPage = S["AdminClusterPage"];
export type RunQueued = S["RunQueued"];
export type SkillReview = S["SkillReviewOut"];
// The architect step's runs (functions/architect).
export type ArchitectRun = S["ArchitectRunOut"];
export type ArchitectRunPage = S["RunPage"];
export type RunRequested = S["RunRequested"];

export interface AuditEvent {
  id: number;
  occurred_at: string;
  event: string;
  actor_user_id: string | null;
  subject_user_id: string | null;
  ip_addr: string | null;
  details: unknown;
}
export interface AuditPage {
  items: AuditEvent[];
  next_cursor: string | null;
}
export interface PointerMove {
  adapter_id: string;
  version: number;
  previous_version: number;
  moved: boolean;
}
export interface Discarded {
  adapter_id: string;
  version: number;
  discarded: boolean;
  files_removed: number | boolean;
}

export class AdminError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

type Fetch = typeof fetch;
let fetcher: Fetch = (input, init) => globalThis.fetch(input, init);
/** Tests swap the fetch. */
export function useFetch(f: Fetch): void {
  fetcher = f;
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const init: RequestInit = { method, credentials: "same-origin", headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method === "POST") headers["Idempotency-Key"] = globalThis.crypto.randomUUID();
  return fetcher(path, init);
}

/** The envelope's `data`; an AdminError with its message otherwise. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response = await send(method, path, body);
  if (response.status === 401) {
    const refreshed = await send("POST", "/v1/auth/refresh", {});
    if (refreshed.ok) response = await send(method, path, body);
  }
  let parsed: { status?: string; data?: T; error?: { code?: string; message?: string } } = {};
  try {
    parsed = (await response.json()) as typeof parsed;
  } catch {
    // not JSON: reported below
  }
  if (response.ok && parsed.status === "ok") return parsed.data as T;
  throw new AdminError(response.status, parsed.error?.code ?? "http_error", parsed.error?.message ?? `HTTP ${response.status}`);
}

export const get = <T>(path: string) => call<T>("GET", path);

export function qs(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") search.set(k, String(v));
  const s = search.toString();
  return s ? `?${s}` : "";
}
