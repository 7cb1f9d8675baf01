// A multipart upload with progress (fetch cannot report upload progress; XMLHttpRequest can),
// in the same envelope and with the same one-time silent refresh as the API client.
import { api, newId } from "../api/client";
import { ApiError, errorFromBody, NetworkError } from "../api/envelope";
import type { LimitsOut, UploadOut } from "../api/types";

export interface UploadInput {
  file: File;
  contextId: string | null;
  chunkSize: number | null;
}

/** Client-side checks against GET /v1/files/limits: null when fine, else why not. */
export function checkFile(file: Pick<File, "name" | "size">, limits: LimitsOut | null): string | null {
  if (!limits) return null;
  const dot = file.name.lastIndexOf(".");
  const ext = dot >= 0 ? file.name.slice(dot).toLowerCase() : "";
  const allowed = limits.allowed_extensions.map((e) => (e.startsWith(".") ? e : `.${e}`).toLowerCase());
  if (allowed.length > 0 && !allowed.includes(ext)) return `Files of type "${ext || "none"}" are not allowed. Allowed: ${allowed.join(" ")}`;
  if (file.size > limits.max_bytes) return `The file is larger than your plan's limit (${limits.max_bytes} bytes).`;
  if (file.size === 0) return "The file is empty.";
  return null;
}

function once(input: UploadInput, onProgress: (fraction: number) => void): Promise<UploadOut> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", input.file, input.file.name);
    if (input.contextId) form.append("context_id", input.contextId);
    if (input.chunkSize != null) form.append("chunk_size", String(input.chunkSize));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/files/upload");
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Idempotency-Key", newId());
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("error", () => reject(new NetworkError()));
    xhr.addEventListener("load", () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText) as unknown;
      } catch {
        body = null;
      }
      const headers = new Headers();
      const retry = xhr.getResponseHeader("retry-after");
      if (retry) headers.set("retry-after", retry);
      if (xhr.status >= 200 && xhr.status < 300 && body && typeof body === "object" && "data" in body) {
        resolve((body as { data: UploadOut }).data);
      } else {
        reject(errorFromBody(xhr.status, body, headers));
      }
    });
    xhr.send(form);
  });
}

export async function uploadFile(input: UploadInput, onProgress: (fraction: number) => void): Promise<UploadOut> {
  try {
    return await once(input, onProgress);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && (await api.refresh())) return once(input, onProgress);
    throw error;
  }
}

export interface Ingestion {
  status: string;
  chunks: number | null;
  error: string | null;
}

const DONE = new Set(["ready", "failed"]);

/** The ingestion of `fileId` into `contextId` as GET /v1/files/{id} reports it, read every
 * `intervalMs` until it is ready or failed (or `signal` aborts, or `maxPolls` reads were
 * made); each new state goes to `onState`. The last state read. */
export async function watchIngestion(
  fileId: string, contextId: string, onState: (state: Ingestion) => void,
  { intervalMs = 1500, maxPolls = 400, signal, wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) }:
  { intervalMs?: number; maxPolls?: number; signal?: AbortSignal; wait?: (ms: number) => Promise<void> } = {},
): Promise<Ingestion | null> {
  let last: Ingestion | null = null;
  for (let poll = 0; poll < maxPolls && !signal?.aborted; poll++) {
    const file = await api.get("/v1/files/{id}", { path: { id: fileId }, ...(signal ? { signal } : {}) });
    const source = (file.contexts ?? []).find((c) => c["context_id"] === contextId);
    if (source) {
      const state: Ingestion = {
        status: String(source["status"]),
        chunks: typeof source["chunks"] === "number" ? source["chunks"] : null,
        error: typeof source["error"] === "string" ? source["error"] : null,
      };
      if (!last || last.status !== state.status || last.chunks !== state.chunks) onState(state);
      last = state;
      if (DONE.has(state.status)) return state;
    }
    await wait(intervalMs);
  }
  return last;
}

/** What the upload panel says about an ingestion state. */
export function describeIngestion(name: string, state: Ingestion): string {
  switch (state.status) {
    case "ready":
      return `${name} is ready: ${state.chunks ?? 0} passage${state.chunks === 1 ? "" : "s"} indexed.`;
    case "failed":
      return `${name} could not be indexed${state.error ? `: ${state.error}` : "."}`;
    case "processing":
      return `${name} is being indexed…`;
    default:
      return `${name} is waiting to be indexed…`;
  }
}
