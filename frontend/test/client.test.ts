import { describe, expect, it, vi } from "vitest";
import { ApiClient, buildUrl } from "../src/api/client";
import { ApiError, NetworkError } from "../src/api/envelope";
import { backoffMs, DEFAULT_RETRY, shouldRetry } from "../src/api/retry";
import { fail, fakeFetch, header, ok } from "./helpers";

function client(answers: Parameters<typeof fakeFetch>[0]) {
  const f = fakeFetch(answers);
  const sleeps: number[] = [];
  const api = new ApiClient({ fetch: f.fetch, sleep: async (ms) => void sleeps.push(ms), random: () => 1 });
  return { api, calls: f.calls, sleeps };
}

describe("retry policy", () => {
  it("retries 5xx answers, and network errors only for GET, never 4xx", () => {
    expect(shouldRetry(new ApiError({ status: 503, code: "unavailable", message: "" }), "POST")).toBe(true);
    expect(shouldRetry(new ApiError({ status: 500, code: "server_error", message: "" }), "GET")).toBe(true);
    for (const status of [400, 401, 403, 404, 409, 429]) {
      expect(shouldRetry(new ApiError({ status, code: "x", message: "" }), "GET")).toBe(false);
    }
    expect(shouldRetry(new NetworkError(), "GET")).toBe(true);
    expect(shouldRetry(new NetworkError(), "POST")).toBe(false);
  });

  it("backs off exponentially from 400 ms, capped, never below Retry-After", () => {
    const p = DEFAULT_RETRY;
    expect([0, 1, 2, 3].map((n) => backoffMs(n, p, null, () => 1))).toEqual([400, 800, 1600, 3200]);
    expect(backoffMs(0, p, null, () => 0)).toBe(200);
    expect(backoffMs(10, p, null, () => 1)).toBe(p.maxMs);
    expect(backoffMs(0, p, 2, () => 1)).toBe(2000);
  });
});

describe("ApiClient", () => {
  it("builds paths and queries", () => {
    expect(buildUrl("/v1/conversations/{id}/messages", { id: "a b" }, { cursor: 3, limit: null, x: "" })).toBe(
      "/v1/conversations/a%20b/messages?cursor=3",
    );
  });

  it("sends cookies same-origin and unwraps the envelope", async () => {
    const { api, calls } = client([ok({ items: [], next_cursor: null })]);
    await expect(api.get("/v1/conversations", { query: { limit: 5 } })).resolves.toEqual({ items: [], next_cursor: null });
    expect(calls[0]!.url).toBe("/v1/conversations?limit=5");
    expect(calls[0]!.init.credentials).toBe("same-origin");
  });

  it("retries a 5xx with back-off, reusing the POST's Idempotency-Key", async () => {
    const { api, calls, sleeps } = client([fail(503, "unavailable"), fail(502, "bad_gateway"), ok({ id: "c1" }, 201)]);
    await expect(api.post("/v1/conversations", { body: { title: "t" } })).resolves.toEqual({ id: "c1" });
    expect(calls).toHaveLength(3);
    expect(sleeps).toEqual([400, 800]);
    const keys = calls.map((c) => header(c, "Idempotency-Key"));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("gives up after three retries", async () => {
    const { api, calls } = client([fail(500, "server_error"), fail(500, "server_error"), fail(500, "server_error"), fail(500, "server_error")]);
    await expect(api.get("/v1/me")).rejects.toMatchObject({ status: 500 });
    expect(calls).toHaveLength(4);
  });

  it("never retries a 4xx, a 429 included (its Retry-After is for the user)", async () => {
    const { api, calls, sleeps } = client([fail(429, "rate_limited", "Slow down.", { "Retry-After": "9" })]);
    const err = (await api.get("/v1/me").catch((e: unknown) => e)) as ApiError;
    expect(err.retryAfterS).toBe(9);
    expect(calls).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it("retries network errors for GET only", async () => {
    const get = client([new TypeError("Failed to fetch"), ok({ id: "u" })]);
    await expect(get.api.get("/v1/me")).resolves.toEqual({ id: "u" });
    const post = client([new TypeError("Failed to fetch")]);
    await expect(post.api.post("/v1/conversations", { body: { title: null } })).rejects.toBeInstanceOf(NetworkError);
    expect(post.calls).toHaveLength(1);
  });

  it("refreshes the session once on a 401 (empty JSON body, cookie sent) and retries", async () => {
    const { api, calls } = client([fail(401, "unauthorized"), ok({ mode: "cookie" }), ok({ id: "u" })]);
    await expect(api.get("/v1/me")).resolves.toEqual({ id: "u" });
    expect(calls.map((c) => c.url)).toEqual(["/v1/me", "/v1/auth/refresh", "/v1/me"]);
    expect(calls[1]!.init.method).toBe("POST");
    expect(calls[1]!.init.body).toBe("{}");
  });

  it("ends the session when the refresh fails", async () => {
    const { api, calls } = client([fail(401, "unauthorized"), fail(401, "unauthorized")]);
    const ended = vi.fn();
    api.onSessionEnded = ended;
    await expect(api.get("/v1/me")).rejects.toMatchObject({ status: 401 });
    expect(calls).toHaveLength(2);
    expect(ended).toHaveBeenCalledOnce();
  });

  it("does not refresh for the login itself", async () => {
    const { api, calls } = client([fail(401, "mfa_required", "code needed", {}, { mfa_ticket: "t".repeat(20) })]);
    const err = (await api.post("/v1/auth/login", { body: { email: "a@b.c", password: "x", use_cookies: true } }).catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("mfa_required");
    expect(calls).toHaveLength(1);
  });

  it("shares one refresh between concurrent 401s", async () => {
    let refreshes = 0;
    const api = new ApiClient({
      fetch: (async (input: RequestInfo | URL) => {
        const url = String(input);
        if (url === "/v1/auth/refresh") {
          refreshes++;
          return ok({});
        }
        return refreshes === 0 ? fail(401, "unauthorized") : ok({ url });
      }) as typeof fetch,
      sleep: async () => {},
    });
    const [a, b] = await Promise.all([api.get("/v1/me"), api.get("/v1/files/limits")]);
    expect([a, b]).toEqual([{ url: "/v1/me" }, { url: "/v1/files/limits" }]);
    expect(refreshes).toBe(1);
  });
});
