import type { CitationSegment, ContentStruct } from "../../api/events";

function fileName(path: string | undefined, fallback: string): string {
  if (!path) return fallback;
  const parts = path.split("/");
  return parts[parts.length - 1] || path;
}

function heading(meta: CitationSegment["meta"]): string | null {
  const h = meta?.heading;
  if (Array.isArray(h)) return h.join(" › ");
  return typeof h === "string" && h ? h : null;
}

/** The sources an answer cites, numbered as the answer marks them ([1], [2]…). */
export function Citations({ struct }: { struct: ContentStruct | null }) {
  const cites = (struct?.segments ?? []).filter((s): s is CitationSegment & typeof s => s.type === "citation") as unknown as CitationSegment[];
  if (cites.length === 0) return null;
  return (
    <div class="citations">
      <h3 class="small muted">Sources</h3>
      <ol>
        {cites.map((c, i) => {
          const name = fileName(c.path, `source ${c.source_id.slice(0, 8)}`);
          const h = heading(c.meta);
          return (
            <li key={`${c.source_id}-${c.chunk_id ?? i}`}>
              <details>
                <summary class="chip" title={c.path ?? c.source_id}>
                  [{i + 1}] {name}
                </summary>
                <div class="citation-body">
                  <p class="small muted">
                    {c.path ?? c.source_id}
                    {h && ` · ${h}`}
                    {c.meta?.page != null && ` · page ${c.meta.page}`}
                    {c.score != null && ` · score ${c.score.toFixed(3)}`}
                  </p>
                  {c.text ? <blockquote class="snippet">{c.text}</blockquote> : <p class="muted small">No passage text was stored with this citation.</p>}
                </div>
              </details>
            </li>
          );
        })}
      </ol>
    </div>
  );
}
