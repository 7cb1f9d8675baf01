// The contexts the user may read (their own and the global ones), as cards; one is chosen.
import { formatDate, shortId } from "../../lib/format";
import { canChange, contexts, contextsCursor, contextsError, contextsLoading, loadContexts } from "../../state/contexts";
import { Badge } from "../common/Badge";
import { Empty, ErrorNote, Loading } from "../common/Status";

export function ContextList({ selected, onSelect }: { selected: string | null; onSelect: (id: string) => void }) {
  return (
    <section class="panel" aria-labelledby="contexts-title">
      <h2 id="contexts-title" tabIndex={-1}>Contexts</h2>
      <ErrorNote message={contextsError.value} onRetry={() => void loadContexts()} />
      {contextsLoading.value && <Loading />}
      {!contextsLoading.value && contexts.value.length === 0 && <Empty>No contexts yet.</Empty>}
      <ul class="cards">
        {contexts.value.map((c) => (
          <li key={c.id}>
            <button type="button" class={c.id === selected ? "context-card selected" : "context-card"} aria-pressed={c.id === selected} onClick={() => onSelect(c.id)}>
              <strong>{c.name}</strong>
              <span class="row wrap">
                <Badge kind="visibility" value={c.visibility} />
                {!canChange(c) && <span class="badge readonly-badge">read-only</span>}
              </span>
              <span class="small muted">{c.description || "No description"}</span>
              <span class="small muted monospace">{shortId(c.id)} · {formatDate(c.created_at)}</span>
            </button>
          </li>
        ))}
      </ul>
      {contextsCursor.value && (
        <button type="button" onClick={() => void loadContexts(true)}>Load more</button>
      )}
    </section>
  );
}
