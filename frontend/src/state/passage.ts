// The "Cited passage" panel: which citation is open, and reading what it points at
// (GET /v1/chunks/{id}: the whole chunk; the snippet stored with the answer when the chunk is
// gone) and a link that shows its file (GET /v1/files/{id}/download?inline=true).
import { signal } from "@preact/signals";
import { api } from "../api/client";
import { ApiError } from "../api/envelope";
import type { CitationSegment } from "../api/events";
import { onSignOut } from "./auth";

export interface Passage {
  text: string;
  fileName: string;
  fileId: string | null;
  heading: string | null;
  page: number | null;
  /** Read from the context now (false: the snippet stored with the answer). */
  live: boolean;
  /** Why the live passage could not be read, when it could not. */
  note: string | null;
}

export const openCitation = signal<{ cite: CitationSegment; number: number } | null>(null);

export function showCitation(cite: CitationSegment, number: number): void {
  openCitation.value = { cite, number };
}

export function closeCitation(): void {
  openCitation.value = null;
}

onSignOut(closeCitation);

export function baseName(path: string | null | undefined): string | null {
  if (!path) return null;
  const parts = path.split("/");
  return parts[parts.length - 1] || path;
}

function headingOf(value: unknown): string | null {
  if (Array.isArray(value)) return value.filter((v) => typeof v === "string" && v).join(" › ") || null;
  return typeof value === "string" && value ? value : null;
}

function stored(cite: CitationSegment, note: string | null): Passage {
  return {
    text: cite.text ?? "",
    fileName: baseName(cite.path) ?? `source ${cite.source_id.slice(0, 8)}`,
    fileId: cite.source_id || null,
    heading: headingOf(cite.meta?.heading),
    page: typeof cite.meta?.page === "number" ? cite.meta.page : null,
    live: false,
    note,
  };
}

/** The passage a citation points at: the chunk as the context has it now, else the snippet
 * the answer stored (a chunk deleted or re-ingested since, or no chunk id). Errors other
 * than "not found" are thrown. */
export async function loadPassage(cite: CitationSegment): Promise<Passage> {
  const chunkId = cite.chunk_id == null ? "" : String(cite.chunk_id);
  if (!chunkId) return stored(cite, null);
  try {
    const chunk = await api.get("/v1/chunks/{id}", { path: { id: chunkId } });
    return {
      text: chunk.content,
      fileName: chunk.file_name,
      fileId: chunk.file_id ?? (cite.source_id || null),
      heading: chunk.heading ?? headingOf(cite.meta?.heading),
      page: chunk.page ?? null,
      live: true,
      note: null,
    };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return stored(cite, "This passage is no longer in the context (its file was removed or indexed again); this is the text saved with the answer.");
    }
    throw error;
  }
}

/** A signed link (10 minutes) that shows the file in the browser rather than saving it. */
export async function inlineFileUrl(fileId: string): Promise<string> {
  const link = await api.get("/v1/files/{id}/download", { path: { id: fileId }, query: { inline: true } });
  return link.url;
}
