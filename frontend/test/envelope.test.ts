import { describe, expect, it } from "vitest";
import { ApiError, NetworkError, parseRetryAfter, readEnvelope, userMessage } from "../src/api/envelope";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), {
    status, headers: { "content-type": "application/json", ...headers },
  });
}

describe("readEnvelope", () => {
  it("returns data of an ok envelope", async () => {
    await expect(readEnvelope(json(200, { status: "ok", data: { a: 1 }, request_id: "r" }))).resolves.toEqual({ a: 1 });
  });

  it("throws the error envelope's code, message, details and request id", async () => {
    const err = await readEnvelope(
      json(404, { status: "error", error: { code: "not_found", message: "no such conversation", details: { id: "x" } }, request_id: "req-1" }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    expect([e.status, e.code, e.message, e.requestId]).toEqual([404, "not_found", "no such conversation", "req-1"]);
    expect(e.details).toEqual({ id: "x" });
  });

  it("reads Retry-After on a 429 and says when to try again", async () => {
    const err = (await readEnvelope(
      json(429, { status: "error", error: { code: "rate_limited", message: "Too many requests.", details: null }, request_id: "r" }, { "retry-after": "17" }),
    ).catch((e: unknown) => e)) as ApiError;
    expect(err.retryAfterS).toBe(17);
    expect(userMessage(err)).toBe("Too many requests. Try again in 17 s.");
  });

  it("turns a body that is not an envelope into an ApiError", async () => {
    const err = (await readEnvelope(new Response("<html>Bad gateway</html>", { status: 502 })).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(502);
    expect(err.code).toBe("server_error");
    await expect(readEnvelope(json(200, { hello: 1 }))).rejects.toMatchObject({ code: "bad_response" });
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("5")).toBe(5);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter("Tue, 01 Jan 2029 00:00:30 GMT", now)).toBe(0);
  });
});

describe("userMessage", () => {
  it("uses the envelope's message", () => {
    expect(userMessage(new ApiError({ status: 400, code: "validation_error", message: "content is blank" }))).toBe("content is blank");
    expect(userMessage(new ApiError({ status: 503, code: "unavailable", message: "Busy.", retryAfterS: 3 }))).toBe("Busy. Try again in 3 s.");
    expect(userMessage(new NetworkError())).toMatch(/could not be reached/);
  });
});
