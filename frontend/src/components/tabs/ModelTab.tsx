// "Your model": the persona (what it learned, controls), the adapters the user may use, the
// versions of the chosen one (metrics plotted), and training jobs with live progress.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api/client";
import type { JobOut } from "../../api/types";
import { formatDate, shortId } from "../../lib/format";
import { useLoad } from "../../lib/useLoad";
import { Badge, Progress } from "../common/Badge";
import { Empty, ErrorNote, Loading } from "../common/Status";
import { AdapterVersions } from "../model/AdapterVersions";
import { Personalization } from "../model/Personalization";
import { Topics } from "../model/Topics";
import "../../styles/model.css";

const ACTIVE = new Set(["queued", "running"]);
/** How often the jobs list is read again while a job is queued or running. */
export const POLL_MS = 3000;

function Adapters({ selected, onSelect }: { selected: string | null; onSelect: (id: string) => void }) {
  const list = useLoad(() => api.get("/v1/adapters", { query: { owner: "all", limit: 50 } }), []);
  const first = list.data?.items.find((a) => a.owner === "me") ?? list.data?.items[0];
  useEffect(() => {
    if (!selected && first) onSelect(first.id);
  }, [selected, first?.id]);
  return (
    <section class="panel" aria-labelledby="adapters-title">
      <h2 id="adapters-title">Adapters</h2>
      {list.loading && <Loading />}
      <ErrorNote message={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 && <Empty>No adapters yet. Your own appears after your first feedback.</Empty>}
      {list.data && list.data.items.length > 0 && (
        <table class="table">
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Owner</th><th scope="col">Served version</th><th scope="col">Mode</th><th scope="col">Used</th><th scope="col">Updated</th></tr>
          </thead>
          <tbody>
            {list.data.items.map((a) => (
              <tr key={a.id} class={selected === a.id ? "selected" : ""}>
                <td title={a.id}>
                  <button type="button" class="link-button" aria-pressed={selected === a.id} onClick={() => onSelect(a.id)}>{a.name}</button>
                  <div class="small muted">{a.description ?? ""}</div>
                </td>
                <td><Badge kind="type" value={a.adapter_type} /></td>
                <td>{a.owner}</td>
                <td>v{a.version} of {a.latest_version} {a.has_weights ? "(weights)" : "(prompt only)"}</td>
                <td>{a.mode ?? "—"}</td>
                <td>{a.router.usage_count ?? 0}×</td>
                <td>{formatDate(a.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function useJobs() {
  const list = useLoad(() => api.get("/v1/training/jobs", { query: { limit: 20 } }), []);
  const live = list.data?.items.some((j) => ACTIVE.has(j.status)) ?? false;
  // Live progress: poll while a job is queued or running.
  useEffect(() => {
    if (!live) return undefined;
    const timer = setInterval(list.reload, POLL_MS);
    return () => clearInterval(timer);
  }, [live, list.reload]);
  return list;
}

function Jobs({ list }: { list: ReturnType<typeof useJobs> }) {
  return (
    <section class="panel" aria-labelledby="jobs-title">
      <h2 id="jobs-title">Training jobs</h2>
      {list.loading && !list.data && <Loading />}
      <ErrorNote message={list.error} onRetry={list.reload} />
      {list.data && list.data.items.length === 0 && <Empty>No training jobs yet. Rate answers to start one.</Empty>}
      {list.data && list.data.items.length > 0 && (
        <table class="table">
          <thead>
            <tr><th scope="col">Job</th><th scope="col">Status</th><th scope="col">Progress</th><th scope="col">Loss</th><th scope="col">Events</th><th scope="col">Version</th><th scope="col">Created</th></tr>
          </thead>
          <tbody>
            {list.data.items.map((j: JobOut) => (
              <tr key={j.id} data-job-status={j.status}>
                <td class="monospace" title={j.id}>{shortId(j.id)}</td>
                <td>
                  <Badge kind="status" value={j.status} />
                  {j.reason && <div class="small muted">{j.reason}</div>}
                </td>
                <td><Progress step={j.progress?.step} total={j.progress?.total} label={`Progress of job ${shortId(j.id)}`} /></td>
                <td>{j.loss != null ? j.loss.toFixed(4) : j.progress?.loss != null ? j.progress.loss.toFixed(4) : "—"}</td>
                <td>{j.events_used ?? "—"}</td>
                <td>{j.new_version != null ? `v${j.new_version}${j.version_state ? ` (${j.version_state})` : ""}` : "—"}</td>
                <td>{formatDate(j.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function ModelTab() {
  const [selected, setSelected] = useState<string | null>(null);
  const [epoch, setEpoch] = useState(0);
  const jobs = useJobs();
  return (
    <div class="tab-page">
      <Personalization onChanged={() => { setEpoch((n) => n + 1); jobs.reload(); }} />
      <Topics />
      <Adapters key={`a${epoch}`} selected={selected} onSelect={setSelected} />
      {selected && <AdapterVersions key={`${selected}:${epoch}`} id={selected} jobs={jobs.data?.items ?? []} />}
      <Jobs list={jobs} />
    </div>
  );
}
