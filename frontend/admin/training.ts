// Training across all users: the job counts by status (GET /v1/admin/metrics, Prometheus text)
// and every user's jobs (GET /v1/admin/training/jobs: newest first, by status, paged), each
// with its owner, progress and reason, and a link to its adapter's versions.
import { type AdminJob, type AdminJobPage, get, type JobStatus, qs } from "./api";
import { h, message, pagedRows, replace, section, table, td, when } from "./dom";

export const STATUSES: readonly JobStatus[] = ["queued", "running", "succeeded", "rejected", "failed", "cancelled"];
const PAGE = 50;

/** `training_jobs{status="…"} N` lines of the metrics text, as {status: N}. */
export function jobCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^training_jobs\{status="([a-z_]+)"\}\s+([0-9.eE+-]+)\s*$/gm)) {
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A gauge without labels (`training_job_last_loss 0.41`); null when absent or NaN. */
export function gauge(text: string, name: string): number | null {
  const m = new RegExp(`^${name}\\s+([0-9.eE+-]+|NaN)\\s*$`, "m").exec(text);
  const v = m ? Number(m[1]) : NaN;
  return Number.isFinite(v) ? v : null;
}

/** A job's progress as text: `5/24 (21 %) · loss 2.5000`; "—" when none was reported. */
export function progressText(p: AdminJob["progress"]): string {
  if (!p || (p.step == null && p.total == null && p.loss == null)) return "—";
  const parts: string[] = [];
  if (p.step != null || p.total != null) {
    const pct = p.step != null && p.total ? ` (${Math.round((100 * p.step) / p.total)} %)` : "";
    parts.push(`${p.step ?? "?"}/${p.total ?? "?"}${pct}`);
  }
  if (p.loss != null) parts.push(`loss ${p.loss.toFixed(4)}`);
  return parts.join(" · ");
}

export interface TrainingOptions {
  /** The metrics' fetch (Prometheus text, outside the envelope). */
  fetcher?: typeof fetch;
  /** Shows an adapter's versions (the adapters section). */
  openAdapter?: (adapterId: string) => void;
}

export function trainingSection(options: TrainingOptions = {}): HTMLElement {
  const fetcher = options.fetcher ?? ((i, init) => globalThis.fetch(i, init));
  const { root, body, status } = section("training", "Training jobs (all users)");
  const counts = h("div", { id: "job-counts" });
  const jobsStatus = h("p", { class: "status", id: "jobs-status", role: "status" });
  const tbody = h("tbody", { id: "jobs" });
  const more = h("button", { type: "button", id: "more-jobs", disabled: true }, "More jobs");
  const filter = h("select", { id: "job-status" },
    h("option", { value: "" }, "any"), ...STATUSES.map((s) => h("option", { value: s }, s)));

  const loadCounts = () => {
    status.textContent = "Reading the training metrics…";
    fetcher("/v1/admin/metrics", { credentials: "same-origin", headers: { Accept: "text/plain" } })
      .then(async (r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const text = await r.text();
        const loss = gauge(text, "training_job_last_loss");
        const finished = gauge(text, "training_job_last_finished_timestamp_seconds");
        status.textContent = `Last loss: ${loss ?? "—"} · last finished: ${finished ? new Date(finished * 1000).toISOString() : "—"}`;
        replace(counts, table(["Status", "Jobs"], Object.entries(jobCounts(text)).map(([s, n]) => h("tr", {}, td(s), td(n))), "Training jobs by status"));
      })
      .catch((e: unknown) => {
        status.textContent = `Could not read the training metrics: ${message(e)}`;
      });
  };

  const jobRow = (j: AdminJob): HTMLTableRowElement => {
    const open = options.openAdapter;
    // A global skill's job has no single user.
    const owner = j.user_id
      ? td(j.user_email ?? "", h("div", { class: "muted", title: j.user_id }, j.user_id.slice(0, 8)))
      : td("global", h("div", { class: "muted" }, "skill"));
    return h("tr", { "data-job-id": j.id, "data-job-status": j.status, "data-user": j.user_email ?? "global" },
      owner,
      td(h("span", { class: `badge ${j.status}` }, j.status), j.attempt > 1 ? h("div", { class: "muted" }, `attempt ${j.attempt}/${j.max_attempts}`) : null),
      td(progressText(j.progress)),
      td(when(j.created_at)),
      td(j.reason ?? ""),
      td(j.new_version != null ? `v${j.new_version}${j.version_state ? ` (${j.version_state})` : ""}` : "",
        open ? h("button", { type: "button", onclick: () => open(j.adapter_id), "aria-label": `Adapter of the job ${j.id}` }, "Adapter") : null));
  };

  const loadJobs = pagedRows<AdminJob>({
    tbody, more, status: jobsStatus, what: "jobs", row: jobRow,
    fetch: (cursor) => get<AdminJobPage>(`/v1/admin/training/jobs${qs({ limit: PAGE, cursor, status: filter.value })}`),
    shown: (n, older) => `${n} job${n === 1 ? "" : "s"} shown${older ? "; more are older" : ""}.`,
  });

  filter.addEventListener("change", () => loadJobs(true));
  more.addEventListener("click", () => loadJobs(false));
  const refresh = h("button", { type: "button", onclick: () => { loadCounts(); loadJobs(true); } }, "Refresh");
  const list = table(["User", "Status", "Progress", "Created", "Reason", "Version"], [], "Every user's jobs, newest first");
  list.querySelector("tbody")!.replaceWith(tbody);
  replace(body, counts,
    h("div", { class: "row" }, h("label", { for: "job-status" }, "Status"), filter, refresh),
    jobsStatus, h("div", { class: "scroll" }, list), more);
  loadCounts();
  loadJobs(true);
  return root;
}
