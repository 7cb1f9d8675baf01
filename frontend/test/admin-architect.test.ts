// The admin console's architect panel: "Run the architect now" queues a run, follows it to its
// end and lists the recent runs with what each proposed, in a DOM with a fake API.
import { afterEach, describe, expect, it, vi } from "vitest";
import { architectSection, runSummary } from "../admin/architect";
import { fail, flush, ok } from "./helpers";

afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
});

const T = "2026-11-27T10:00:00+00:00";
const REPORT = {
  skipped: null, targets: 2, too_long: 0, asked: 2, answered: 2, model_failed: 0, model_error: null,
  unparsable: 1, unparsable_reasons: { "no JSON in the answer": 1 }, empty: 0, items: 2, over_limit: 0,
  rate_limited: 0, refused: 0, duplicate: 0, proposed: 1, rejected_invalid: 1, problem_kinds: { reference: 1 },
  pending: 0, unexpected: 0, patch_ids: [41], prompt_tokens: 900, completion_tokens: 60, answers: [],
};
const run = (id: number, over: Record<string, unknown> = {}) => ({
  id, trigger: "admin", requested_by: "u-1", status: "done", report: REPORT, error: null,
  created_at: T, started_at: T, finished_at: T, ...over,
});

describe("architect run wording", () => {
  it("says what each state means and what a run proposed", () => {
    expect(runSummary(run(1, { status: "queued", report: null }))).toBe("queued: waiting for the architect function");
    expect(runSummary(run(1, { status: "failed", report: null, error: "ConnectionError: down" }))).toBe("failed: ConnectionError: down");
    expect(runSummary(run(1, { status: "skipped", report: { ...REPORT, skipped: "ARCHITECT_ENABLED is off" } })))
      .toBe("skipped: ARCHITECT_ENABLED is off");
    expect(runSummary(run(1))).toBe(
      "asked about 2 of 2 artifacts, 2 answered; 1 proposed (0 pending, 1 rejected as invalid); 1 unusable");
  });
});

describe("the architect panel", () => {
  it("queues a run, follows it until it ends and lists it", async () => {
    const calls: string[] = [];
    let reads = 0;
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      calls.push(`${init.method ?? "GET"} ${input}`);
      if (input.startsWith("/v1/admin/architect/runs?")) {
        return ok({ items: reads > 1 ? [run(7)] : [], next_before: null });
      }
      if (input === "/v1/admin/architect/run") return ok({ run: run(7, { status: "queued", report: null }), queued: true }, 202);
      if (input === "/v1/admin/architect/runs/7") {
        reads += 1;
        return ok(reads > 1 ? run(7) : run(7, { status: "running", report: null }));
      }
      return fail(404, "not_found", `unexpected ${input}`);
    }));
    const { root } = architectSection({ pollMs: 0 });
    document.body.append(root);
    await flush();
    expect(root.textContent).toContain("No run yet");
    const button = root.querySelector<HTMLButtonElement>("#run-architect")!;
    button.click();
    expect(button.disabled).toBe(true);
    await flush(20);
    expect(calls.filter((c) => c === "GET /v1/admin/architect/runs/7")).toHaveLength(2);
    expect(root.querySelector('[role="status"]')?.textContent).toBe(
      "Run 7: asked about 2 of 2 artifacts, 2 answered; 1 proposed (0 pending, 1 rejected as invalid); 1 unusable");
    const row = root.querySelector<HTMLTableRowElement>('tr[data-run-id="7"]')!;
    expect(row.dataset.status).toBe("done");
    expect(row.cells[5]!.textContent).toBe("#41");
    expect(button.disabled).toBe(false);
  });

  it("says why a run could not be queued", async () => {
    vi.stubGlobal("fetch", vi.fn(async (input: string) =>
      input === "/v1/admin/architect/run" ? fail(403, "forbidden", "admins only") : ok({ items: [], next_before: null })));
    const { root } = architectSection({ pollMs: 0 });
    document.body.append(root);
    root.querySelector<HTMLButtonElement>("#run-architect")!.click();
    await flush();
    expect(root.querySelector('[role="status"]')?.textContent).toBe("Could not start a run: admins only");
    expect(root.querySelector<HTMLButtonElement>("#run-architect")!.disabled).toBe(false);
  });
});
