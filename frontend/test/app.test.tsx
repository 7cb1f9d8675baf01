// The whole app in a DOM with a fake API: log in, walk every tab, log out (no exceptions, real
// data rendered, nothing invented).
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../src/components/App";
import { auth, logIn, logOut } from "../src/state/auth";
import { navigate } from "../src/state/router";
import { ok } from "./helpers";

const USER = { id: "u1", email: "ada@example.com", handle: null, role: "user", created_at: "2030-01-01T00:00:00Z", email_verified: false, mfa_enabled: false };
const CONV = { id: "0b6f6c7e-0000-4000-8000-0000000000c1", title: "Boiling eggs", status: "open", created_at: "2030-01-01T00:00:00Z", updated_at: "2030-01-02T00:00:00Z", active_context_id: null, message_count: 2 };
const MSGS = [
  { id: "m1", conversation_id: CONV.id, parent_id: null, sender: "user", role: "user", content: "How long?", content_struct: null, seq: 1, created_at: "2030-01-01T00:00:00Z", token_count_in: null, token_count_out: null, meta: {} },
  { id: "m2", conversation_id: CONV.id, parent_id: "m1", sender: "assistant", role: "assistant", content: "Nine minutes [1].", seq: 2, created_at: "2030-01-01T00:00:01Z", token_count_in: 5, token_count_out: 4,
    content_struct: { segments: [{ type: "text", text: "Nine minutes [1]." }, { type: "citation", text: "Cook eggs 9 minutes.", source_id: "f1", chunk_id: "k1", path: "notes/eggs.md", score: 0.9 }] },
    meta: { adapters: [{ id: "persona-1", weight: 0.5, how: "prompt", version: 1 }], trace: { router: { policy: "default_user_routing", adapters: [] }, workflow: [{ node: "answer", tool: "llm.generic_chat_v1", outcome: "ok", latency_ms: 12 }], finish_reason: "stop" } } },
];

const ROUTES: Record<string, unknown> = {
  "POST /v1/auth/login": { user: USER, access_token: null, refresh_token: null, expires_in: 900, mode: "cookie", session_id: "s1" },
  "POST /v1/auth/logout": { ok: true },
  "GET /v1/conversations": { items: [CONV], next_cursor: "more" },
  [`GET /v1/conversations/${CONV.id}/messages`]: { items: MSGS, next_cursor: null },
  "GET /v1/preferences": { items: [], next_cursor: null },
  "GET /v1/auth/sessions": { items: [{ id: "s1", created_at: "2030-01-01T00:00:00Z", expires_at: "2030-02-01T00:00:00Z", user_agent: "Firefox", ip: "127.0.0.1", current: true }] },
  "GET /v1/files/limits": { plan_tier: "free", max_bytes: 10485760, allowed_extensions: [".md", ".pdf"], tiers: {} },
  "GET /healthz": { status: "ok", version: "1.2.3", git_commit: "abc1234", checks: {} },
  "GET /v1/voice/voices": { voices: [{ id: "en_US-joe-medium", language: "en_US", sample_rate: 22050 }], default: "en_US-joe-medium" },
  "GET /v1/me/settings": { default_voice: null },
  "GET /v1/adapters": { items: [{ id: "a1", name: "persona", description: null, adapter_type: "persona", mode: "prompt", visibility: "private", owner: "me", version: 2, latest_version: 3, version_count: 3, has_weights: false, base_model: null, router: { usage_count: 4, success_score: null, last_used_at: null, last_trained_at: null }, created_at: "2030-01-01T00:00:00Z", updated_at: "2030-01-01T00:00:00Z" }], next_cursor: null },
  "GET /v1/training/jobs": { items: [{ id: "j1", adapter_id: "a1", status: "succeeded", progress: { step: 30, total: 60, loss: 1.5 }, metrics: null, reason: null, attempt: 1, max_attempts: 3, errors: [], events_used: 8, loss: 1.2345, base_version: 1, new_version: 2, promoted: true, version_state: "served", trigger: "threshold", created_at: "2030-01-01T00:00:00Z", started_at: null, finished_at: null, updated_at: "2030-01-01T00:00:00Z" }], next_cursor: null },
  "GET /v1/contexts": { items: [{ id: "x1", owner_user_id: "u1", name: "Cooking", description: "recipes", visibility: "private", settings: {}, embedding_version: "v1", created_at: "2030-01-01T00:00:00Z", updated_at: "2030-01-01T00:00:00Z", stats: { chunks: 3 } }], next_cursor: null },
  "GET /v1/artifacts": { items: [{ id: "w1", type: "workflow.chat", name: "default_chat", description: null, schema: { kind: "workflow.chat" }, visibility: "global", version: 1, owner: "global", created_at: "2030-01-01T00:00:00Z", updated_at: "2030-01-01T00:00:00Z" }], next_cursor: null },
};

const seen: string[] = [];
const fetchMock = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
  const url = new URL(String(input), "http://app.test");
  const key = `${init.method ?? "GET"} ${url.pathname}`;
  seen.push(`${key}${url.search}`);
  if (!(key in ROUTES)) return new Response(JSON.stringify({ status: "error", error: { code: "not_found", message: `no ${key}`, details: null }, request_id: "r" }), { status: 404 });
  return ok(ROUTES[key]);
});

const flush = async () => {
  for (let i = 0; i < 5; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
};

afterEach(() => vi.unstubAllGlobals());

describe("the app", () => {
  it("logs in, shows conversations and a stored answer, walks every tab, logs out", async () => {
    vi.stubGlobal("fetch", fetchMock);
    const root = document.createElement("div");
    document.body.appendChild(root);
    auth.value = { status: "anonymous" };
    act(() => render(<App />, root));
    expect(root.querySelector("h1")?.textContent).toBe("Adaptive Chat");

    await act(() => logIn("ada@example.com", "correct horse battery"));
    await flush();
    expect(JSON.parse(String(fetchMock.mock.calls[0]![1]!.body))).toMatchObject({ use_cookies: true });
    expect(root.textContent).toContain("Boiling eggs");
    expect(root.textContent).toContain("Load more");
    expect(root.textContent).toContain("not verified");

    act(() => navigate(`/c/${CONV.id}`));
    await flush();
    const answer = root.querySelector('[data-role="assistant"]')!;
    expect(answer.textContent).toContain("Nine minutes");
    expect(answer.querySelector(".citations button")?.textContent).toBe("[1] eggs.md");
    expect(answer.querySelector(".why")?.textContent).toContain("default_user_routing");
    expect(root.querySelector(".conv.active")?.textContent).toContain("Boiling eggs");

    act(() => navigate("/settings"));
    await flush();
    expect(root.textContent).toContain("Firefox");
    expect(root.textContent).toContain("1.2.3");
    expect(root.textContent).toContain("10.0 MiB");
    expect(root.querySelector<HTMLSelectElement>("#voice-title ~ form select")?.value).toBe("en_US-joe-medium");

    act(() => navigate("/model"));
    await flush();
    expect(root.querySelector("progress")?.getAttribute("value")).toBe("30");
    expect(root.textContent).toContain("v2 of 3");

    act(() => navigate("/contexts"));
    await flush();
    expect(root.textContent).toContain("Cooking");

    act(() => navigate("/artifacts"));
    await flush();
    expect(root.textContent).toContain("default_chat");

    await act(() => logOut());
    await flush();
    expect(auth.value.status).toBe("anonymous");
    expect(window.location.pathname).toBe("/"); // the next login starts in the chat
    expect(root.querySelector('[role="tab"]')).toBeNull();
    expect(seen.filter((s) => s.startsWith("GET /v1/conversations?"))[0]).toBe("GET /v1/conversations?limit=30&status=open");
    render(null, root);
    root.remove();
  });
});
