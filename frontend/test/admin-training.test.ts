// The admin console's training jobs (every user's) and adapters (any user's, with their
// versions and the actions on them), in a DOM with a fake API.
import { afterEach, describe, expect, it, vi } from "vitest";
import { adaptersSection, heldOut, ownerText, versionState } from "../admin/adapters";
import { when } from "../admin/dom";
import { progressText, trainingSection } from "../admin/training";
import { fail, ok } from "./helpers";

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
};
afterEach(() => vi.unstubAllGlobals());

const METRICS = 'training_jobs{status="queued"} 1.0\ntraining_jobs{status="failed"} 2.0\ntraining_job_last_loss 0.5\n';

function job(id: string, over: Record<string, unknown> = {}) {
  return {
    id, adapter_id: "ad-1", status: "failed", progress: { step: 5, total: 20, loss: 2.5 }, metrics: null,
    reason: "out of memory", attempt: 3, max_attempts: 3, errors: [], events_used: 12, loss: null,
    base_version: 1, new_version: null, promoted: null, version_state: null, trigger: "threshold",
    created_at: "2026-11-27T10:00:00+00:00", started_at: null, finished_at: null, updated_at: "2026-11-27T10:00:00+00:00",
    user_id: "11111111-2222-4333-8444-555555555555", user_email: "<b>bob</b>@example.test", ...over,
  };
}

function version(n: number, over: Record<string, unknown> = {}) {
  return {
    version: n, served: false, candidate: false, has_weights: true, mode: "local", checksum: "c", rank: 4, alpha: 8,
    metrics: null, promoted: true, job_id: null, training_config: null, created_by: "system", change_note: null,
    created_at: "2026-11-27T09:00:00Z", ...over,
  };
}

const ADAPTER = {
  id: "ad-1", name: "bob-persona", description: null, adapter_type: "persona", mode: "local", visibility: "private",
  owner: "private", version: 2, latest_version: 3, version_count: 3, has_weights: true, base_model: "m",
  router: { usage_count: 0, success_score: null, last_used_at: null, last_trained_at: null },
  created_at: "2026-11-27T08:00:00Z", updated_at: "2026-11-27T09:30:00Z",
  owner_user_id: "11111111-2222-4333-8444-555555555555", owner_email: "bob@example.test",
};

function detail(served: number) {
  return {
    ...ADAPTER, version: served,
    versions: {
      items: [
        version(3, { served: served === 3, candidate: served !== 3, promoted: false, job_id: "job-3-abcdefgh",
          metrics: { heldout_loss_new: 1.9, heldout_loss_current: 1.8 } }),
        version(2, { served: served === 2 }),
        version(1),
      ],
      next_cursor: null,
    },
  };
}

describe("admin training jobs", () => {
  it("writes progress, times and states as text", () => {
    expect(progressText({ step: 5, total: 20, loss: 2.5 })).toBe("5/20 (25 %) · loss 2.5000");
    expect(progressText({ step: null, total: null, loss: null })).toBe("—");
    expect(progressText(null)).toBe("—");
    expect(progressText({ step: 3, total: null, loss: null })).toBe("3/?");
    expect(when("2026-11-27T10:00:00+00:00")).toBe("2026-11-27 10:00:00");
    expect(when("soon")).toBe("soon");
    expect(when(null)).toBe("");
    expect(versionState(version(1, { served: true }) as never)).toBe("served");
    expect(versionState(version(1, { candidate: true, promoted: false }) as never)).toBe("candidate");
    expect(versionState(version(1, { promoted: false }) as never)).toBe("not promoted");
    expect(versionState(version(1) as never)).toBe("kept");
    expect(ownerText(ADAPTER as never)).toBe("bob@example.test");
    expect(ownerText({ ...ADAPTER, owner: "me" } as never)).toBe("bob@example.test (you)");
    expect(ownerText({ ...ADAPTER, owner: "global", owner_email: null, owner_user_id: null } as never)).toBe("global");
    expect(heldOut({ heldout_loss_new: 1.9, heldout_loss_current: 1.8, alignment_new: 0.5 })).toBe("loss 1.90 vs 1.80 · alignment 0.50");
    expect(heldOut(null)).toBe("");
  });

  it("lists every user's jobs as text, filters by status and pages", async () => {
    const urls: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (input: string) => {
      urls.push(input);
      if (input === "/v1/admin/metrics") return new Response(METRICS, { headers: { "content-type": "text/plain" } });
      if (input.includes("cursor=c1")) return ok({ items: [job("j3", { status: "succeeded", reason: null, progress: null, new_version: 4, version_state: "served" })], next_cursor: null });
      if (input.includes("status=failed")) return ok({ items: [job("j9")], next_cursor: null });
      return ok({ items: [job("j1"), job("j2", { status: "running", reason: null, attempt: 1 })], next_cursor: "c1" });
    }));
    const opened: string[] = [];
    const section = trainingSection({ openAdapter: (id) => opened.push(id) });
    document.body.append(section);
    await flush();

    expect(urls).toContain("/v1/admin/training/jobs?limit=50");
    expect(section.querySelector("#job-counts")?.textContent).toContain("failed2");
    expect(section.querySelector("b")).toBeNull(); // an e-mail address is text, never markup
    const rows = () => [...section.querySelectorAll<HTMLTableRowElement>("#jobs tr")];
    expect(rows().map((r) => r.dataset.jobId)).toEqual(["j1", "j2"]);
    const first = rows()[0]!;
    expect(first.dataset.jobStatus).toBe("failed");
    expect(first.textContent).toContain("<b>bob</b>@example.test");
    expect(first.textContent).toContain("5/20 (25 %) · loss 2.5000");
    expect(first.textContent).toContain("2026-11-27 10:00:00");
    expect(first.textContent).toContain("out of memory");
    expect(first.textContent).toContain("attempt 3/3");
    expect(section.querySelector("#jobs-status")?.textContent).toBe("2 jobs shown; more are older.");

    const more = section.querySelector<HTMLButtonElement>("#more-jobs")!;
    expect(more.disabled).toBe(false);
    more.click();
    await flush();
    expect(urls.at(-1)).toBe("/v1/admin/training/jobs?limit=50&cursor=c1");
    expect(rows().map((r) => r.dataset.jobId)).toEqual(["j1", "j2", "j3"]);
    expect(rows()[2]!.textContent).toContain("v4 (served)");
    expect(more.disabled).toBe(true);

    const filter = section.querySelector<HTMLSelectElement>("#job-status")!;
    filter.value = "failed";
    filter.dispatchEvent(new Event("change"));
    await flush();
    expect(urls.at(-1)).toBe("/v1/admin/training/jobs?limit=50&status=failed");
    expect(rows().map((r) => r.dataset.jobId)).toEqual(["j9"]);

    rows()[0]!.querySelector("button")!.click();
    expect(opened).toEqual(["ad-1"]);
    section.remove();
  });

  it("says why the jobs could not be listed", async () => {
    vi.stubGlobal("fetch", vi.fn(async (input: string) =>
      input === "/v1/admin/metrics" ? new Response("", { status: 403 }) : fail(403, "forbidden", "admins only")));
    const section = trainingSection();
    await flush();
    expect(section.querySelector("#jobs-status")?.textContent).toBe("Could not list the jobs: admins only");
    expect(section.querySelector(".status")?.textContent).toContain("Could not read the training metrics");
  });
});

describe("admin adapters", () => {
  it("lists every adapter, shows one's versions and acts on them", async () => {
    const calls: string[] = [];
    let served = 2;
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      calls.push(`${init.method} ${input}${init.body ? ` ${String(init.body)}` : ""}`);
      if (input.startsWith("/v1/admin/adapters?")) return ok({ items: [ADAPTER], next_cursor: "a1" });
      if (input.endsWith("/versions/3/approve")) {
        served = 3;
        return ok({ adapter_id: "ad-1", version: 3, previous_version: 2, moved: true, updated_at: "t" });
      }
      if (input.endsWith("/rollback")) return ok({ adapter_id: "ad-1", version: 1, previous_version: 3, moved: true, updated_at: "t" });
      if (init.method === "DELETE") return ok({ adapter_id: "ad-1", version: 1, discarded: true, files_removed: true });
      return ok(detail(served));
    }));
    const { root, show } = adaptersSection();
    document.body.append(root);
    await flush();
    expect(calls[0]).toBe("GET /v1/admin/adapters?limit=30");
    const row = root.querySelector<HTMLTableRowElement>('tr[data-adapter-id="ad-1"]')!;
    expect(row.textContent).toContain("bob@example.test");
    expect(row.textContent).toContain("3 kept, latest v3");
    expect(root.querySelector<HTMLButtonElement>("#more-adapters")!.disabled).toBe(false);

    [...row.querySelectorAll("button")].find((b) => b.textContent === "Versions of bob-persona")!.click();
    await flush();
    expect(calls.at(-1)).toBe("GET /v1/admin/adapters/ad-1?limit=50");
    const versions = () => [...root.querySelectorAll<HTMLTableRowElement>("#versions tr")];
    expect(versions().map((r) => `${r.dataset.version}:${r.dataset.state}`)).toEqual(["3:candidate", "2:served", "1:kept"]);
    expect(versions()[0]!.textContent).toContain("loss 1.90 vs 1.80");
    expect(versions()[0]!.textContent).toContain("job-3-ab");
    expect(root.querySelector("#adapter-detail h3")?.textContent).toContain("serving v2");
    const button = (name: string) => [...root.querySelectorAll<HTMLButtonElement>("#versions button")].find((b) => b.textContent === name);
    expect(button("Serve v2")).toBeUndefined(); // the served one: no serve, no discard
    expect(button("Discard v2")).toBeUndefined();
    expect(button("Approve v1")).toBeUndefined(); // only candidates are approved

    button("Approve v3")!.click();
    await flush();
    expect(calls).toContain("POST /v1/admin/adapters/ad-1/versions/3/approve");
    expect(root.querySelector("#adapter-action")?.textContent).toBe("Now serving v3 (was v2).");
    expect(versions().map((r) => `${r.dataset.version}:${r.dataset.state}`)).toEqual(["3:served", "2:kept", "1:kept"]);
    expect(root.querySelector('tr[data-adapter-id="ad-1"]')?.textContent).toContain("v3");

    (root.querySelector("#adapter-note") as HTMLInputElement).value = "regressed";
    button("Serve v1")!.click();
    await flush();
    expect(calls).toContain('POST /v1/admin/adapters/ad-1/rollback {"version":1,"note":"regressed"}');

    button("Discard v1")!.click();
    await flush();
    expect(calls).toContain("DELETE /v1/admin/adapters/ad-1/versions/1");
    expect(root.querySelector("#adapter-action")?.textContent).toBe("v1 discarded.");

    // By id (from the jobs table), and the list's filters.
    show("ad-1");
    await flush();
    expect((root.querySelector("#adapter-id") as HTMLInputElement).value).toBe("ad-1");
    const kind = root.querySelector<HTMLSelectElement>("#adapter-kind")!;
    kind.value = "persona";
    kind.dispatchEvent(new Event("change"));
    await flush();
    expect(calls.at(-1)).toBe("GET /v1/admin/adapters?limit=30&type=persona");
    (root.querySelector("#adapter-owner") as HTMLInputElement).value = "not a uuid";
    root.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    expect(root.querySelector("#adapters-status")?.textContent).toBe("The owner must be a user id (a UUID).");
    (root.querySelector("#adapter-owner") as HTMLInputElement).value = ADAPTER.owner_user_id;
    root.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    await flush();
    expect(calls.at(-1)).toBe(`GET /v1/admin/adapters?limit=30&type=persona&user_id=${ADAPTER.owner_user_id}`);
    root.remove();
  });

  it("says when an action is refused", async () => {
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      if (input.startsWith("/v1/admin/adapters?")) return ok({ items: [], next_cursor: null });
      if (init.method === "DELETE") return fail(409, "conflict", "version 2 is the one served");
      return ok(detail(3));
    }));
    const { root, show } = adaptersSection();
    show("ad-1");
    await flush();
    expect(root.querySelector("#adapters-status")?.textContent).toBe("0 adapters shown.");
    [...root.querySelectorAll<HTMLButtonElement>("#versions button")].find((b) => b.textContent === "Discard v2")!.click();
    await flush();
    expect(root.querySelector("#adapter-action")?.textContent).toBe("discard v2 failed: version 2 is the one served");
  });
});
