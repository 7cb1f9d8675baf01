// The architect step (issue 20 item 6): "Run the architect now" queues a run
// (POST /v1/admin/architect/run answers at once: the model's calls outlast a gateway's timeout),
// then the run is followed (GET /v1/admin/architect/runs/{id}) until it ends, and the recent
// runs (scheduled and asked for) are listed with what each proposed. Its proposals wait in the
// patch queue like anyone's: nothing here approves or applies.
import { type ArchitectRun, type ArchitectRunPage, call, get, qs, type RunRequested } from "./api";
import { h, message, replace, section, table, td, when } from "./dom";

const RECENT = 10;
const POLL_MS = 2000;
const ENDED = new Set(["done", "skipped", "failed"]);

/** One line on how a run went: its status, then what the model did and what was proposed. */
export function runSummary(run: ArchitectRun): string {
  if (run.status === "queued") return "queued: waiting for the architect function";
  if (run.status === "running") return "running: the model is reading the metrics and the artifacts";
  if (run.status === "failed") return `failed: ${run.error ?? "no reason recorded"}`;
  const r = run.report;
  if (!r) return run.status;
  if (r.skipped) return `skipped: ${r.skipped}`;
  const parts = [
    `asked about ${r.asked} of ${r.targets} artifacts, ${r.answered} answered`,
    `${r.proposed} proposed (${r.pending} pending, ${r.rejected_invalid} rejected as invalid)`,
  ];
  if (r.unparsable) parts.push(`${r.unparsable} unusable`);
  if (r.duplicate) parts.push(`${r.duplicate} already pending`);
  if (r.rate_limited) parts.push(`${r.rate_limited} over the configops budget`);
  if (r.model_failed) parts.push(`the model failed ${r.model_failed}× (${r.model_error ?? "no error"})`);
  return parts.join("; ");
}

export function architectSection(options: { pollMs?: number } = {}): { root: HTMLElement; load: () => void } {
  const { root, body, status } = section("architect", "The architect");
  const runButton = h("button", { type: "button", id: "run-architect" }, "Run the architect now");
  const list = h("div", { id: "architect-runs" });
  const poll = options.pollMs ?? POLL_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const render = (page: ArchitectRunPage) => {
    if (page.items.length === 0) {
      replace(list, h("p", { class: "muted" }, "No run yet: the schedule runs it every 6 hours."));
      return;
    }
    const rows = page.items.map((run) =>
      h("tr", { "data-run-id": String(run.id), "data-status": run.status },
        td(String(run.id)), td(run.trigger), td(when(run.created_at)), td(run.status), td(runSummary(run)),
        td(run.report?.patch_ids.length ? run.report.patch_ids.map((id) => `#${id}`).join(" ") : "none")));
    replace(list, h("div", { class: "scroll" },
      table(["Run", "By", "Asked at", "Status", "Outcome", "Patches"], rows, "Recent architect runs")));
  };

  const load = () => {
    get<ArchitectRunPage>(`/v1/admin/architect/runs${qs({ limit: RECENT })}`)
      .then(render)
      .catch((e: unknown) => replace(list, h("p", { class: "muted" }, `Could not list the runs: ${message(e)}`)));
  };

  const follow = (id: number) => {
    clearTimeout(timer);
    get<ArchitectRun>(`/v1/admin/architect/runs/${id}`)
      .then((run) => {
        status.textContent = `Run ${run.id}: ${runSummary(run)}`;
        if (ENDED.has(run.status)) {
          runButton.disabled = false;
          load();
        } else {
          timer = setTimeout(() => follow(id), poll);
        }
      })
      .catch((e: unknown) => {
        status.textContent = `Could not read run ${id}: ${message(e)}`;
        runButton.disabled = false;
      });
  };

  runButton.addEventListener("click", () => {
    runButton.disabled = true;
    status.textContent = "Queueing a run…";
    call<RunRequested>("POST", "/v1/admin/architect/run")
      .then(({ run, queued }) => {
        status.textContent = `Run ${run.id}: ${queued ? "" : "already under way; "}${runSummary(run)}`;
        load();
        follow(run.id);
      })
      .catch((e: unknown) => {
        status.textContent = `Could not start a run: ${message(e)}`;
        runButton.disabled = false;
      });
  });

  replace(body,
    h("p", { class: "muted" }, "The model reads the recent routing, feedback and failure figures and the global routing policy and workflow, and may propose patches. They are validated and dry-run like anyone's and wait in the patch queue for a decision."),
    h("p", {}, runButton), list);
  load();
  return { root, load };
}
