// "Your topics" in "Your model": the user's clusters and the consent to global clustering.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { skillText, switchOutcome, Topics, topicName, topicSize } from "../src/components/model/Topics";
import { ok } from "./helpers";

const T = "2030-01-01T00:00:00Z";
const topic = (id: string, over: Record<string, unknown> = {}) => ({
  id, scope: "user", label: "Boiling eggs", description: "How long to boil eggs.", labeled_by: "model",
  keywords: ["egg", "boil", "minutes"], size: 12, positive_count: 9, negative_count: 2, created_at: T, updated_at: T, ...over,
});
let personalization: Record<string, unknown>;
let clusters: unknown;
let patchStatus = "pending";
const calls: string[] = [];

const fetchMock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
  const url = new URL(String(input), "http://app.test");
  const method = init.method ?? "GET";
  calls.push(`${method} ${url.pathname}${url.search}${init.body ? ` ${String(init.body)}` : ""}`);
  if (url.pathname === "/v1/clusters") return ok(clusters);
  if (url.pathname === "/v1/config/patches") return ok({ id: 9, status: patchStatus }, 201);
  if (method === "PATCH") personalization = { ...personalization, ...(JSON.parse(String(init.body)) as object) };
  return ok(personalization);
});

const flush = async () => {
  for (let i = 0; i < 6; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
};

let root: HTMLElement;
beforeEach(() => {
  personalization = { adapter_id: null, adapter_version: null, has_weights: false, learning_paused: false, reset_at: null, instructions: [],
    training: { threshold: 5, cooldown_s: 60, new_events: 1, cooldown_until: null, active_job: null, last_job: null }, global_clustering: false };
  clusters = { items: [topic("t1"), topic("t2", { label: null, description: null, size: 1, positive_count: 1, negative_count: 0 })], next_cursor: null };
  calls.length = 0;
  vi.stubGlobal("fetch", fetchMock);
  root = document.createElement("div");
  document.body.appendChild(root);
});
afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
});

describe("Your topics", () => {
  it("names topics and their sizes", () => {
    expect(topicName(topic("x") as never)).toBe("Boiling eggs");
    expect(topicName(topic("x", { label: "" }) as never)).toBe("egg, boil, minutes");
    expect(topicName(topic("x", { label: null, keywords: [] }) as never)).toBe("Unnamed topic");
    expect(topicSize(topic("x") as never)).toBe("12 pieces of feedback · 9 good, 2 bad");
    expect(topicSize(topic("x", { size: 1 }) as never)).toBe("1 piece of feedback · 9 good, 2 bad");
  });

  it("lists the user's topics and toggles the consent to global clustering", async () => {
    act(() => render(<Topics />, root));
    await flush();
    expect(calls).toContain("GET /v1/clusters?limit=50");
    expect(root.querySelector("h2")?.textContent).toBe("Your topics");
    const rows = [...root.querySelectorAll<HTMLTableRowElement>("tr[data-topic-id]")];
    expect(rows.map((r) => r.dataset.topicId)).toEqual(["t1", "t2"]);
    expect(rows[0]!.textContent).toContain("Boiling eggs");
    expect(rows[0]!.textContent).toContain("How long to boil eggs.");
    expect(rows[0]!.textContent).toContain("egg, boil, minutes");
    expect(rows[0]!.textContent).toContain("12 pieces of feedback · 9 good, 2 bad");
    expect(rows[1]!.textContent).toContain("egg, boil, minutes");

    const box = [...root.querySelectorAll("label")].find((l) => l.textContent === "Allow global clustering")!.querySelector("input")!;
    expect(box.checked).toBe(false);
    expect(root.textContent).toContain("Off: your feedback forms only your own topics");
    await act(async () => {
      box.click();
    });
    await flush();
    expect(calls).toContain('PATCH /v1/me/personalization {"global_clustering":true}');
    expect(root.querySelector<HTMLInputElement>("input[type=checkbox]")!.checked).toBe(true);
    expect(root.textContent).toContain("Your feedback may help form shared topics");
  });

  it("says when there are no topics, and offers no toggle when the API has none", async () => {
    clusters = { items: [], next_cursor: null };
    delete personalization.global_clustering;
    act(() => render(<Topics />, root));
    await flush();
    expect(root.textContent).toContain("No topics yet.");
    expect(root.querySelector("input[type=checkbox]")).toBeNull();
  });

  it("shows a topic's skill and lets its user switch it off, through a ConfigOps patch", async () => {
    const skill = { adapter_id: "a-1", name: "skill-eggs", version: 2, status: "active", has_weights: true };
    clusters = { items: [topic("t1", { skill }), topic("t2")], next_cursor: null };
    act(() => render(<Topics />, root));
    await flush();
    const [withSkill, without] = [...root.querySelectorAll<HTMLTableRowElement>("tr[data-topic-id]")];
    expect(without!.cells[3]!.textContent).toBe("—");
    expect(withSkill!.cells[3]!.textContent).toContain("On");
    const button = withSkill!.querySelector<HTMLButtonElement>("button")!;
    expect(button.getAttribute("aria-label")).toBe("Switch off the skill for this topic");
    await act(async () => button.click());
    await flush();
    const sent = calls.find((c) => c.startsWith("POST /v1/config/patches"))!;
    expect(JSON.parse(sent.slice("POST /v1/config/patches ".length))).toEqual({
      artifact_id: "a-1", base_version: 2, patch: [{ op: "add", path: "/status", value: "disabled" }],
      justification: "switched off by its user in Your topics",
    });
    expect(root.querySelector('[role="status"]')?.textContent).toBe("Asked to switch the skill off: an administrator decides.");
  });

  it("words a skill's state and what switching it did", () => {
    expect(skillText({ adapter_id: "a", name: "n", version: 1, status: "active", has_weights: false })).toBe("On · still learning");
    expect(skillText({ adapter_id: "a", name: "n", version: 3, status: "disabled", has_weights: true })).toBe("Off");
    expect(switchOutcome("applying", true)).toBe("Switching the skill on: it takes effect in a moment.");
    expect(switchOutcome("rejected", false)).toBe("The skill could not be switched off.");
    patchStatus = "pending";
  });
});
