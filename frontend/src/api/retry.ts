// When and how long to retry: 5xx answers (with exponential back-off), network failures only
// for idempotent GETs, never a 4xx (the request itself is wrong, or it is a 429 the user is told
// about with its Retry-After).
import { ApiError, NetworkError } from "./envelope";

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseMs: 400, maxMs: 8000 };

export function shouldRetry(error: unknown, method: string): boolean {
  if (error instanceof ApiError) return error.status >= 500 && error.status <= 599;
  if (error instanceof NetworkError) return method.toUpperCase() === "GET";
  return false;
}

/** Delay before retry number `attempt` (0-based): base * 2^attempt, jittered to 50-100 %,
 *  at least the server's Retry-After, at most maxMs. */
export function backoffMs(
  attempt: number,
  policy: RetryPolicy,
  retryAfterS: number | null = null,
  random: () => number = Math.random,
): number {
  const exp = policy.baseMs * 2 ** attempt;
  const jittered = exp * (0.5 + random() * 0.5);
  const floor = retryAfterS != null ? retryAfterS * 1000 : 0;
  return Math.min(policy.maxMs, Math.max(jittered, floor));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface RetryDeps {
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

/** Runs `attempt` until it succeeds, fails with something not retryable, or retries run out. */
export async function withRetry<T>(
  method: string,
  policy: RetryPolicy,
  attempt: (n: number) => Promise<T>,
  deps: RetryDeps = { sleep, random: Math.random },
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= policy.retries || !shouldRetry(error, method)) throw error;
      const after = error instanceof ApiError ? error.retryAfterS : null;
      // The server asks for a longer pause than we would wait: tell the user instead.
      if (after != null && after * 1000 > policy.maxMs) throw error;
      await deps.sleep(backoffMs(n, policy, after, deps.random));
    }
  }
}
