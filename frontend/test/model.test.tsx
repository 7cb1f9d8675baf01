// "Your model" and the artifact diff in a DOM with a fake API.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ArtifactsTab } from "../src/components/tabs/ArtifactsTab";
import { ModelTab, POLL_MS } from "../src/components/tabs/ModelTab";
import { ok } from "./helpers";

const T = "2030-01-01T00:00:00Z";
const JOB = { id: "j1", adapter_id: "a1", status: "running", progress: { step: 3, total: 10, loss: 1.5 }, metrics: null, reason: null, attempt: 1, max_attempts: 3, errors: [], events_used: 6, loss: null, base_version: 1, new_version: null, promoted: null, version_state: null, trigger: "threshold", created_at: T, started_at: T, finished_at: null, updated_at: T };
const ADAPTER = { id: "a1", name: "persona", description: null, adapter_type: "persona", mode: "prompt", visibility: "private", owner: "me", version: 2, latest_version: 2, version_count: 2, has_weights: true, base_model: null, router: { usage_count: 1, success_score: null, last_used_at: null, last_trained_at: null }, created_at: T, updated_at: T };
const version = (v: number, loss: number | null, alignment: number | null, served: boolean) => ({
  version: v, served, candidate: false, has_weights: v > 1, mode: null, checksum: null, rank: null, alpha: null,
  metrics: loss == null ? null : { heldout: { events: 2, new: { loss, alignment } }, train: { loss: 0.5, samples: 8 } },
  promoted: v > 1 ? true : null, job_id: v > 1 ? "j0" : null, training_config: null, created_by: v > 1 ? "training" : "user", change_note: null, created_at: T,
});
let personalization: Record<string, unknown>;
let jobStatus: string;
const calls: string[] = [];

function route(method: string, path: string, body: unknown): unknown {
  switch (`${method} ${path}`) {
    case "GET /v1/me/personalization": return personalization;
    case "PATCH /v1/me/personalization":
      personalization = { ...personalization, ...(body as object) };
      return personalization;
    case "POST /v1/me/personalization/reset": return { ok: true };
    case "GET /v1/adapters": return { items: [ADAPTER], next_cursor: null };
    case "GET /v1/adapters/a1": return { ...ADAPTER, versions: { items: [version(2, 0.8, 0.75, true), version(1, null, null, false)], next_cursor: null } };
    case "GET /v1/training/jobs": return { items: [{ ...JOB, status: jobStatus }], next_cursor: null };
    case "GET /v1/artifacts": return { items: [{ id: "w1", type: "workflow.chat", name: "mine", description: null, schema: { kind: "workflow.chat", b: 2 }, visibility: "private", version: 2, owner: "me", created_at: T, updated_at: T }], next_cursor: null };
    case "GET /v1/artifacts/w1/versions": return { items: [
      { artifact_id: "w1", version: 2, schema: { kind: "workflow.chat", b: 2, note: "<img src=x onerror=alert(1)>" }, created_by: "user", change_note: "b", created_at: T },
      { artifact_id: "w1", version: 1, schema: { kind: "workflow.chat", a: 1 }, created_by: "user", change_note: null, created_at: T },
    ], next_cursor: null };
    default: return undefined;
  }
}

const fetchMock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
  const url = new URL(String(input), "http://app.test");
  const method = init.method ?? "GET";
  calls.push(`${method} ${url.pathname}${url.search}`);
  const data = route(method, url.pathname, init.body ? JSON.parse(String(init.body)) : undefined);
  if (data === undefined) return new Response(JSON.stringify({ status: "error", error: { code: "not_found", message: "no", details: null }, request_id: "r" }), { status: 404 });
  return ok(data);
});

const flush = async () => {
  for (let i = 0; i < 6; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
};
const button = (root: HTMLElement, name: string) => [...root.querySelectorAll("button")].find((b) => b.textContent?.trim() === name);

let root: HTMLElement;
beforeEach(() => {
  personalization = { adapter_id: "a1", adapter_version: 2, has_weights: true, learning_paused: false, reset_at: null,
    instructions: [{ id: "i1", kind: "always", text: "Answer in metric units", source_event_id: 1, learned_version: 2, applied_as: "weights", created_at: T, updated_at: T }],
    training: { threshold: 5, cooldown_s: 60, new_events: 1, cooldown_until: null, active_job: null, last_job: null } };
  jobStatus = "running";
  calls.length = 0;
  vi.stubGlobal("fetch", fetchMock);
  root = document.createElement("div");
  document.body.appendChild(root);
});
afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("Your model", () => {
  it("shows the persona, its versions plotted with their numbers, and the job's progress", async () => {
    act(() => render(<ModelTab />, root));
    await flush();
    expect(root.textContent).toContain("Answer in metric units");
    expect(root.textContent).toContain("learned into the weights");
    expect(root.textContent).toContain("1 of 5 needed");
    const svg = root.querySelector("svg[role=img]")!;
    expect(svg.getAttribute("aria-label")).toBe("Held-out loss by version: v2 0.8");
    expect(root.querySelector("table caption")?.textContent).toContain("Held-out loss and alignment");
    expect(root.textContent).toContain("0.75");
    expect(root.querySelector("progress")?.getAttribute("value")).toBe("3");
    expect(root.querySelector("[style]")).toBeNull(); // CSP: no style attributes
    expect(calls).toContain("GET /v1/adapters/a1?limit=50");
  });

  it("polls the jobs while one runs, and stops when it ends", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    act(() => render(<ModelTab />, root));
    await flush();
    const jobsRead = () => calls.filter((c) => c.startsWith("GET /v1/training/jobs")).length;
    const before = jobsRead();
    jobStatus = "succeeded";
    act(() => void vi.advanceTimersByTime(POLL_MS));
    await flush();
    expect(jobsRead()).toBe(before + 1);
    expect(root.querySelector("[data-job-status]")?.getAttribute("data-job-status")).toBe("succeeded");
    act(() => void vi.advanceTimersByTime(POLL_MS * 3));
    await flush();
    expect(jobsRead()).toBe(before + 1);
  });

  it("pauses learning, and resets only after a confirmation", async () => {
    act(() => render(<ModelTab />, root));
    await flush();
    act(() => button(root, "Pause learning")!.click());
    await flush();
    expect(calls).toContain("PATCH /v1/me/personalization");
    expect(button(root, "Resume learning")).toBeTruthy();
    act(() => button(root, "Reset to base model")!.click());
    expect(calls.some((c) => c.startsWith("POST /v1/me/personalization/reset"))).toBe(false);
    act(() => button(root, "Confirm reset")!.click());
    await flush();
    expect(calls.some((c) => c.startsWith("POST /v1/me/personalization/reset"))).toBe(true);
  });
});

describe("Artifacts", () => {
  it("shows the versions of an artifact and the diff between them, escaped", async () => {
    act(() => render(<ArtifactsTab />, root));
    await flush();
    act(() => button(root, "mine")!.click());
    await flush();
    expect(root.textContent).toContain("Version history");
    const diff = root.querySelector("pre.diff")!;
    expect(diff.getAttribute("aria-label")).toBe("Changes from v1 to v2");
    const added = [...diff.querySelectorAll(".diff-line.added")].map((l) => l.textContent);
    const removed = [...diff.querySelectorAll(".diff-line.removed")].map((l) => l.textContent);
    expect(removed.join()).toContain('"a": 1');
    expect(added.join()).toContain('"b": 2');
    expect(diff.querySelector("img")).toBeNull(); // text, never markup
    expect(root.querySelector("[style]")).toBeNull();
  });

  it("filters by owner", async () => {
    act(() => render(<ArtifactsTab />, root));
    await flush();
    const owner = [...root.querySelectorAll("label")].find((l) => l.textContent?.startsWith("Owner"))!.querySelector("select")!;
    owner.value = "me";
    act(() => void owner.dispatchEvent(new Event("change")));
    await flush();
    expect(calls.some((c) => c.startsWith("GET /v1/artifacts?") && c.includes("owner=me"))).toBe(true);
  });
});
