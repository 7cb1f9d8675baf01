import { vi } from "vitest";

export function ok(data: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ status: "ok", data, request_id: "r" }), {
    status, headers: { "content-type": "application/json", ...headers },
  });
}

export function fail(status: number, code: string, message = code, headers: Record<string, string> = {}, details: unknown = null): Response {
  return new Response(JSON.stringify({ status: "error", error: { code, message, details }, request_id: "r" }), {
    status, headers: { "content-type": "application/json", ...headers },
  });
}

export interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch that answers from a queue (or a function) and records every call. */
export function fakeFetch(answers: (Response | Error | ((call: Call) => Response))[]) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const call = { url: String(input), init };
    calls.push(call);
    const next = answers.shift();
    if (next === undefined) throw new Error(`unexpected fetch ${call.url}`);
    if (next instanceof Error) throw next;
    return typeof next === "function" ? next(call) : next;
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

export function header(call: Call, name: string): string | undefined {
  const h = call.init.headers as Record<string, string> | undefined;
  return h?.[name];
}

/** Lets pending promises and zero-delay timers run `n` times over (a DOM under a fake API). */
export const flush = async (n = 8): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
};
