import type { CitationSegment, ContentStruct } from "../../api/events";
import { baseName, openCitation, showCitation } from "../../state/passage";

/** The sources an answer cites, numbered as the answer marks them ([1], [2]…); a chip opens
 * the "Cited passage" panel. Under each chip, the sentence of its passage that supports the
 * answer, verbatim, when the answer came with one. */
export function Citations({ struct }: { struct: ContentStruct | null }) {
  const cites = (struct?.segments ?? []).filter((s) => s.type === "citation") as unknown as CitationSegment[];
  if (cites.length === 0) return null;
  const shown = openCitation.value?.cite;
  return (
    <div class="citations">
      <h3 class="small muted">Sources</h3>
      <ol class={cites.some((c) => c.quote) ? "with-quotes" : undefined}>
        {cites.map((c, i) => (
          <li key={`${c.source_id}-${c.chunk_id ?? i}`}>
            <button
              type="button"
              class="chip"
              title={c.path ?? c.source_id}
              aria-haspopup="dialog"
              aria-expanded={shown === c}
              onClick={() => showCitation(c, i + 1)}
            >
              [{i + 1}] {baseName(c.path) ?? `source ${c.source_id.slice(0, 8)}`}
            </button>
            {c.quote && <blockquote class="citation-quote small">{c.quote}</blockquote>}
          </li>
        ))}
      </ol>
    </div>
  );
}
