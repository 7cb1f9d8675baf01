import { useEffect, useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { ContextOut } from "../../api/types";
import { formatDate, pretty, shortId } from "../../lib/format";
import { useLoad } from "../../lib/useLoad";
import { contexts, contextsCursor, contextsError, contextsLoading, createContext, loadContexts } from "../../state/contexts";
import { Badge } from "../common/Badge";
import { Empty, ErrorNote, Loading } from "../common/Status";

function CreateContext() {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await createContext(name.trim(), description.trim());
      setName("");
      setDescription("");
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="new-context">
      <h2 id="new-context">New context</h2>
      <label class="field">
        <span>Name</span>
        <input required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Description</span>
        <textarea rows={2} maxLength={2000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <ErrorNote message={error} />
      <button type="submit" class="primary" disabled={busy || !name.trim()}>
        Create context
      </button>
    </form>
  );
}

function ContextDetails({ context }: { context: ContextOut }) {
  const chunks = useLoad(() => api.get("/v1/contexts/{id}/chunks", { path: { id: context.id }, query: { limit: 5 } }), [context.id]);
  return (
    <section class="panel" aria-label={`Context ${context.name}`}>
      <h2>{context.name}</h2>
      <dl class="details">
        <dt>ID</dt><dd class="monospace">{context.id}</dd>
        <dt>Visibility</dt><dd><Badge kind="visibility" value={context.visibility} /></dd>
        <dt>Created</dt><dd>{formatDate(context.created_at)}</dd>
        <dt>Description</dt><dd>{context.description || "—"}</dd>
        <dt>Stats</dt><dd><pre class="code-block small">{pretty(context.stats ?? {})}</pre></dd>
      </dl>
      <h3>Recent chunks</h3>
      {chunks.loading && <Loading />}
      <ErrorNote message={chunks.error} onRetry={chunks.reload} />
      {chunks.data && chunks.data.items.length === 0 && <Empty>No chunks yet: upload a file into this context.</Empty>}
      {chunks.data?.items.map((c, i) => (
        <blockquote key={i} class="snippet small">{String((c as { content?: unknown }).content ?? "")}</blockquote>
      ))}
    </section>
  );
}

export function ContextsTab() {
  const [selected, setSelected] = useState<string | null>(null);
  useEffect(() => void loadContexts(), []);
  const chosen = contexts.value.find((c) => c.id === selected) ?? null;
  return (
    <div class="tab-page two-col">
      <div>
        <CreateContext />
        <section class="panel" aria-labelledby="contexts-title">
          <h2 id="contexts-title">Contexts</h2>
          <ErrorNote message={contextsError.value} onRetry={() => void loadContexts()} />
          {contextsLoading.value && <Loading />}
          {!contextsLoading.value && contexts.value.length === 0 && <Empty>No contexts yet.</Empty>}
          <ul class="cards">
            {contexts.value.map((c) => (
              <li key={c.id}>
                <button type="button" class={c.id === selected ? "context-card selected" : "context-card"} aria-pressed={c.id === selected} onClick={() => setSelected(c.id)}>
                  <strong>{c.name}</strong> <Badge kind="visibility" value={c.visibility} />
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
      </div>
      {chosen ? <ContextDetails context={chosen} /> : <p class="muted">Select a context to see its details.</p>}
    </div>
  );
}
