import { useState } from "preact/hooks";
import { api } from "../../api/client";
import type { ArtifactOut } from "../../api/types";
import { formatDate, shortId } from "../../lib/format";
import { pretty } from "../../lib/linediff";
import { highlight, highlighterReady } from "../../lib/highlight";
import { useLoad } from "../../lib/useLoad";
import { Badge } from "../common/Badge";
import { Empty, ErrorNote, Loading } from "../common/Status";
import { VersionHistory } from "../artifacts/VersionHistory";
import "../../styles/model.css";

const TYPES = ["", "workflow", "policy", "tool", "adapter", "context", "memory"];
const VISIBILITIES = ["", "private", "shared", "global"] as const;
type Visibility = (typeof VISIBILITIES)[number];
const OWNERS = ["all", "me", "global"] as const;
type Owner = (typeof OWNERS)[number];
const OWNER_LABEL: Record<Owner, string> = { all: "All I can see", me: "Mine", global: "Global" };

function SchemaView({ artifact }: { artifact: ArtifactOut }) {
  void highlighterReady.value; // render again once code colours have loaded
  // highlight() escapes the text before colouring it (the schema is user data).
  const html = highlight(pretty(artifact.schema), "json");
  return (
    <section class="panel" aria-label={`Artifact ${artifact.name}`}>
      <h2>
        {artifact.name} <Badge kind="type" value={artifact.type} /> <Badge kind="visibility" value={artifact.visibility} />{" "}
        <Badge kind="owner" value={artifact.owner} />
      </h2>
      <dl class="details">
        <dt>ID</dt><dd class="monospace">{artifact.id}</dd>
        <dt>Description</dt><dd>{artifact.description || "—"}</dd>
        <dt>Version</dt><dd>{artifact.version}</dd>
        <dt>Owner</dt><dd>{artifact.owner}</dd>
      </dl>
      <h3>Schema</h3>
      <pre class="code-block"><code class="hljs language-json" dangerouslySetInnerHTML={{ __html: html }} /></pre>
      <VersionHistory key={artifact.id} id={artifact.id} current={artifact.version} />
    </section>
  );
}

export function ArtifactsTab() {
  const [type, setType] = useState("");
  const [visibility, setVisibility] = useState<Visibility>("");
  const [owner, setOwner] = useState<Owner>("all");
  const [cursor, setCursor] = useState<string | null>(null);
  const [items, setItems] = useState<ArtifactOut[]>([]);
  const [selected, setSelected] = useState<ArtifactOut | null>(null);
  const page = useLoad(async () => {
    const got = await api.get("/v1/artifacts", { query: { type: type || null, visibility: visibility || null, owner, cursor, limit: 50 } });
    setItems((prev) => (cursor ? [...prev, ...got.items] : got.items));
    return got;
  }, [type, visibility, owner, cursor]);
  const refilter = (fn: () => void) => {
    fn();
    setCursor(null);
    setSelected(null);
  };

  return (
    <div class="tab-page two-col">
      <section class="panel" aria-labelledby="artifacts-title">
        <h2 id="artifacts-title">Artifacts</h2>
        <div class="row wrap">
          <label class="field inline">
            <span>Type</span>
            <select value={type} onChange={(e) => { const v = e.currentTarget.value; refilter(() => setType(v)); }}>
              {TYPES.map((t) => <option key={t} value={t}>{t || "All"}</option>)}
            </select>
          </label>
          <label class="field inline">
            <span>Visibility</span>
            <select value={visibility} onChange={(e) => { const v = e.currentTarget.value as Visibility; refilter(() => setVisibility(v)); }}>
              {VISIBILITIES.map((v) => <option key={v} value={v}>{v || "All"}</option>)}
            </select>
          </label>
          <label class="field inline">
            <span>Owner</span>
            <select value={owner} onChange={(e) => { const v = e.currentTarget.value as Owner; refilter(() => setOwner(v)); }}>
              {OWNERS.map((o) => <option key={o} value={o}>{OWNER_LABEL[o]}</option>)}
            </select>
          </label>
        </div>
        <ErrorNote message={page.error} onRetry={page.reload} />
        {page.loading && <Loading />}
        {!page.loading && items.length === 0 && <Empty>No artifacts match.</Empty>}
        {items.length > 0 && (
          <table class="table">
            <thead>
              <tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Visibility</th><th scope="col">Owner</th><th scope="col">Version</th><th scope="col">Updated</th></tr>
            </thead>
            <tbody>
              {items.map((a) => (
                <tr key={a.id} class={selected?.id === a.id ? "selected" : ""}>
                  <td>
                    <button type="button" class="link-button" aria-pressed={selected?.id === a.id} onClick={() => setSelected(a)} title={a.id}>
                      {a.name}
                    </button>
                    <span class="muted small monospace"> {shortId(a.id)}</span>
                  </td>
                  <td><Badge kind="type" value={a.type} /></td>
                  <td><Badge kind="visibility" value={a.visibility} /></td>
                  <td><Badge kind="owner" value={a.owner} /></td>
                  <td>{a.version}</td>
                  <td>{formatDate(a.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {page.data?.next_cursor && !page.loading && (
          <button type="button" onClick={() => setCursor(page.data?.next_cursor ?? null)}>Load more</button>
        )}
      </section>
      {selected ? <SchemaView artifact={selected} /> : <p class="muted">Select an artifact to see its schema.</p>}
    </div>
  );
}
