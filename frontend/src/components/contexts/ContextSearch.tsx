// "Search" within a context (POST /v1/contexts/{id}/search): the ranked passages with their
// file and score; one opens in the "Cited passage" panel, as a citation does.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import { openCitation, showCitation } from "../../state/passage";
import { Empty, ErrorNote } from "../common/Status";
import { hitCitation, readHit, type SearchHit, snippet } from "./searchHits";

type Mode = "hybrid" | "dense" | "text";
const MODES: [Mode, string][] = [["hybrid", "Meaning and words"], ["dense", "Meaning only"], ["text", "Words only"]];

export function ContextSearch({ contextId }: { contextId: string }) {
  const [query, setQuery] = useState("");
  const [mode, setMode] = useState<Mode>("hybrid");
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [asked, setAsked] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const opener = useRef<HTMLButtonElement | null>(null);
  const open = openCitation.value?.cite;

  // The panel closed (Escape, Close): the keyboard goes back to the hit that opened it.
  useEffect(() => {
    if (open || !opener.current) return;
    if (opener.current.isConnected) opener.current.focus();
    opener.current = null;
  }, [open]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const text = query.trim();
    if (!text) return;
    setBusy(true);
    setError(null);
    try {
      const found = await api.post("/v1/contexts/{id}/search", { path: { id: contextId }, body: { query: text, k: 8, mode } });
      setHits(found.hits.map(readHit));
      setAsked(text);
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="context-search" aria-labelledby="context-search-title">
      <h3 id="context-search-title">Search this context</h3>
      <form class="row wrap" role="search" onSubmit={(e) => void submit(e)}>
        <label class="field grow">
          <span>Search for</span>
          <input type="search" required maxLength={2000} value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>Match by</span>
          <select aria-label="Match by" value={mode} onChange={(e) => setMode(e.currentTarget.value as Mode)}>
            {MODES.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </label>
        <button type="submit" class="primary" disabled={busy || !query.trim()}>
          Search
        </button>
      </form>
      <ErrorNote message={error} />
      {busy && <p class="muted" role="status">Searching…</p>}
      {hits && !busy && hits.length === 0 && <Empty>Nothing in this context matches “{asked}”.</Empty>}
      {hits && hits.length > 0 && (
        <ol class="search-hits" aria-label={`Results for ${asked}`}>
          {hits.map((hit, i) => {
            const cite = hitCitation(hit, contextId);
            const shown = open?.chunk_id === cite.chunk_id && open?.meta?.context_id === contextId;
            return (
              <li key={hit.chunkId || i} class="search-hit">
                <button type="button" class="chip" aria-haspopup="dialog" aria-expanded={shown} onClick={(e) => { opener.current = e.currentTarget; showCitation(cite, i + 1); }}>
                  [{i + 1}] {hit.fileName}
                </button>
                <span class="small muted">
                  {hit.heading && `${hit.heading} · `}
                  {hit.page != null && `page ${hit.page} · `}
                  score {hit.score != null ? hit.score.toFixed(4) : "—"}
                  {hit.similarity != null && hit.similarity > 0 && ` · similarity ${hit.similarity.toFixed(2)}`}
                </span>
                <p class="snippet small">{snippet(hit.content)}</p>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
