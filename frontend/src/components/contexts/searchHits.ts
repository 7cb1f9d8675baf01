// A search hit of POST /v1/contexts/{id}/search (the retriever's Hit, as a dict) read into a
// typed shape, and the citation that opens it in the "Cited passage" panel (state/passage).
import type { CitationSegment } from "../../api/events";
import { baseName } from "../../state/passage";

export interface SearchHit {
  chunkId: string;
  fileId: string | null;
  fileName: string;
  content: string;
  heading: string | null;
  page: number | null;
  score: number | null;
  similarity: number | null;
  raw: Record<string, unknown>;
}

const str = (v: unknown): string | null => (typeof v === "string" && v ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export function readHit(raw: Record<string, unknown>): SearchHit {
  const chunk = raw["chunk_id"];
  return {
    chunkId: chunk == null ? "" : String(chunk),
    fileId: str(raw["file_id"]),
    fileName: baseName(str(raw["path"])) ?? "unnamed file",
    content: typeof raw["content"] === "string" ? raw["content"] : "",
    heading: str(raw["heading"]),
    page: num(raw["page"]),
    score: num(raw["score"]),
    similarity: num(raw["similarity"]),
    raw,
  };
}

/** The hit as an answer would cite it: the panel reads the chunk (GET /v1/chunks/{id}). */
export function hitCitation(hit: SearchHit, contextId: string): CitationSegment {
  const meta: NonNullable<CitationSegment["meta"]> = { context_id: contextId };
  if (hit.heading) meta.heading = hit.heading;
  if (hit.page != null) meta.page = hit.page;
  const cite: CitationSegment = { type: "citation", text: hit.content, source_id: hit.fileId ?? "", meta };
  if (hit.chunkId) cite.chunk_id = hit.chunkId;
  const path = str(hit.raw["path"]);
  if (path) cite.path = path;
  if (hit.score != null) cite.score = hit.score;
  return cite;
}

export function snippet(text: string, max = 240): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
