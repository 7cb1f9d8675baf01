// An artifact's version history and a diff between two chosen versions (default: the one before
// the newest, and the newest).
import { useEffect, useState } from "preact/hooks";
import { formatDate } from "../../lib/format";
import { useLoad } from "../../lib/useLoad";
import { Empty, ErrorNote, Loading } from "../common/Status";
import { DiffView } from "./DiffView";
import { artifactVersions } from "./versions";

export function VersionHistory({ id, current }: { id: string; current: number }) {
  const page = useLoad(() => artifactVersions(id), [id, current]);
  const items = page.data?.items ?? [];
  const [from, setFrom] = useState<number | null>(null);
  const [to, setTo] = useState<number | null>(null);
  useEffect(() => {
    const newest = items[0]?.version ?? null;
    setTo(newest);
    setFrom(items[1]?.version ?? newest);
  }, [page.data]);
  const a = items.find((v) => v.version === from);
  const b = items.find((v) => v.version === to);
  const pick = (label: string, value: number | null, set: (v: number) => void) => (
    <label class="field inline">
      <span>{label}</span>
      <select value={value ?? ""} onChange={(e) => set(Number(e.currentTarget.value))}>
        {items.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}
      </select>
    </label>
  );
  return (
    <div class="version-history">
      <h3>Version history</h3>
      {page.loading && !page.data && <Loading />}
      <ErrorNote message={page.error} onRetry={page.reload} />
      {page.data && items.length === 0 && <Empty>No versions recorded.</Empty>}
      {items.length > 0 && (
        <table class="table small">
          <thead><tr><th scope="col">Version</th><th scope="col">By</th><th scope="col">Note</th><th scope="col">Created</th></tr></thead>
          <tbody>
            {items.map((v) => (
              <tr key={v.version} class={v.version === current ? "selected" : ""}>
                <td>v{v.version}{v.version === current ? " (current)" : ""}</td>
                <td>{v.created_by}</td>
                <td>{v.change_note ?? "—"}</td>
                <td>{formatDate(v.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {items.length > 1 && (
        <>
          <h3>Compare versions</h3>
          <div class="version-pick">
            {pick("From version", from, setFrom)}
            {pick("To version", to, setTo)}
          </div>
          {a && b && <DiffView before={a.schema} after={b.schema} label={`Changes from v${a.version} to v${b.version}`} />}
        </>
      )}
      {page.data?.next_cursor && <p class="small muted">Older versions are not shown.</p>}
    </div>
  );
}
