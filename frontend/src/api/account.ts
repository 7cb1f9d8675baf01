// A user's data rights (DESIGN.md §5a, issue 23): export everything as a zip, and delete the
// account. The routes go through the API client (session cookie, one silent refresh on a 401,
// the error envelope) like every other call. The export types are the generated ones
// (schema.d.ts, from functions/health/openapi.json); DELETE /v1/me reads its JSON body itself,
// so the schema has no request body for it and its type is written here.
import { api } from "./client";
import type { components } from "./schema";

type S = components["schemas"];

export type DataExport = S["ExportOut"];
export type ExportStatus = DataExport["status"];
export type ExportDownload = S["ExportDownload"];

export interface DeleteAccountIn {
  password?: string;
  code?: string;
}

/** The statuses that still change on their own (the screen polls while one is shown). */
export function isPending(e: Pick<DataExport, "status">): boolean {
  return e.status === "queued" || e.status === "running";
}

/** Queues an export of everything the account holds (409 export_in_progress while one is). */
export async function requestExport(): Promise<DataExport> {
  return (await api.post("/v1/me/export", { retries: 0 })).export;
}

/** The caller's last ten exports, newest first. */
export async function listExports(signal?: AbortSignal): Promise<DataExport[]> {
  return (await api.get("/v1/me/exports", { signal })).items;
}

/** One export of the caller (404 for anyone else's). */
export async function getExport(id: string): Promise<DataExport> {
  return (await api.get("/v1/me/exports/{id}", { path: { id } })).export;
}

/** A fresh signed URL of a ready export's zip (409 export_not_ready, 410 export_expired). */
export function exportDownload(id: string): Promise<ExportDownload> {
  return api.get("/v1/me/exports/{id}/download", { path: { id } });
}

/** Deletes the caller's account: 202, every session ends and the server clears the cookies.
 *  Never retried: a second call would meet a deleted account. */
export async function deleteAccount(body: DeleteAccountIn): Promise<void> {
  await api.call<unknown>({ method: "DELETE", path: "/v1/me", body, retries: 0 });
}
