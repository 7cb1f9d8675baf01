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
