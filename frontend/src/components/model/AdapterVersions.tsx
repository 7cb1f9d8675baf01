// One adapter's versions: which is served, candidates, metrics, and the events behind each.
import { api } from "../../api/client";
import type { JobOut } from "../../api/types";
import { formatDate } from "../../lib/format";
import { formatValue } from "../../lib/plot";
import { useLoad } from "../../lib/useLoad";
import { Badge } from "../common/Badge";
import { ErrorNote, Loading } from "../common/Status";
import { versionMetrics } from "./metrics";
import { MetricsPlot } from "./MetricsPlot";

export function AdapterVersions({ id, jobs }: { id: string; jobs: readonly JobOut[] }) {
  const detail = useLoad(() => api.get("/v1/adapters/{id}", { path: { id }, query: { limit: 50 } }), [id]);
  const byJob = new Map(jobs.map((j) => [j.id, j]));
  const d = detail.data;
  const rows = d?.versions.items.map(versionMetrics) ?? [];
  return (
    <section class="panel" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions{d ? ` of ${d.name}` : ""}</h2>
      {detail.loading && !d && <Loading />}
      <ErrorNote message={detail.error} onRetry={detail.reload} />
      {d && (
        <>
          <MetricsPlot rows={rows} />
          <table class="table">
            <thead>
              <tr><th scope="col">Version</th><th scope="col">State</th><th scope="col">Kind</th><th scope="col">Held-out loss</th><th scope="col">Alignment</th><th scope="col">Events behind it</th><th scope="col">Made by</th><th scope="col">Created</th></tr>
            </thead>
            <tbody>
              {d.versions.items.map((v, i) => {
                const m = rows[i]!;
                const job = v.job_id ? byJob.get(v.job_id) : undefined;
                const events = job?.events_used ?? (m.trainSamples != null ? m.trainSamples + (m.heldoutEvents ?? 0) : null);
                return (
                  <tr key={v.version} class={v.served ? "selected" : ""}>
                    <td>v{v.version}</td>
                    <td>
                      {v.served && <Badge kind="status" value="served" />}
                      {v.candidate && <Badge kind="status" value="candidate" />}
                      {v.promoted === false && !v.candidate && <span class="small muted"> not promoted</span>}
                    </td>
                    <td>{v.has_weights ? "weights" : "prompt only"}</td>
                    <td>{formatValue(m.heldoutLoss)}</td>
                    <td>{formatValue(m.alignment)}</td>
                    <td>{events ?? "—"}</td>
                    <td>{v.created_by}{v.change_note ? <div class="small muted">{v.change_note}</div> : null}</td>
                    <td>{formatDate(v.created_at)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
