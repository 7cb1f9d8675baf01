// The HTTP client: same-origin fetch with the session cookies (cookie mode: no token ever
// reaches page scripts), the envelope, retries (retry.ts), and one silent refresh on a 401.
import { ApiError, NetworkError, readEnvelope } from "./envelope";
import { DEFAULT_RETRY, type RetryDeps, type RetryPolicy, sleep, withRetry } from "./retry";
import type { paths } from "./schema";

export type HttpMethod = "get" | "post" | "patch" | "delete";

type Op<P extends keyof paths, M extends HttpMethod> = Extract<paths[P][M], { responses: unknown }>;
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]: [Op<P, M>] extends [never] ? never : P;
}[keyof paths];

type JsonOf<R> = R extends { content: { "application/json": infer J } } ? J : never;
type DataOf<R> = JsonOf<R> extends { data: infer D } ? D : unknown;
type Success<O> = O extends { responses: infer R }
  ? R extends { 200: infer S } ? DataOf<S>
    : R extends { 201: infer S } ? DataOf<S>
      : R extends { 202: infer S } ? DataOf<S>
        : unknown
  : never;
type BodyOf<O> = O extends { requestBody?: infer B }
  ? [NonNullable<B>] extends [never] ? undefined : JsonOf<NonNullable<B>>
  : undefined;
type Params<O> = O extends { parameters: infer P } ? P : never;
type QueryOf<O> = Params<O> extends { query?: infer Q } ? NonNullable<Q> : never;
type PathOf<O> = Params<O> extends { path: infer X } ? X : never;

export type Options<O> = {
  query?: [QueryOf<O>] extends [never] ? undefined : QueryOf<O>;
  signal?: AbortSignal;
  /** Retries on 5xx (default 3); 0 for calls that must not run twice. */
  retries?: number;
  idempotencyKey?: string;
} & ([PathOf<O>] extends [never] ? { path?: undefined } : { path: PathOf<O> })
  & ([BodyOf<O>] extends [undefined] ? { body?: undefined } : { body: BodyOf<O> });

type Args<O> = Record<string, never> extends Options<O> ? [options?: Options<O>] : [options: Options<O>];
export type Data<P extends keyof paths, M extends HttpMethod> = Success<Op<P, M>>;

export interface RawRequest {
  method: string;
  path: string;
  query?: Record<string, unknown> | undefined;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  retries?: number | undefined;
  idempotencyKey?: string | undefined;
  /** Refresh the session once on a 401 and try again (off for the auth routes themselves). */
  refresh?: boolean;
}

export interface ClientDeps extends RetryDeps {
  fetch: typeof fetch;
}

const NO_REFRESH = new Set(["/v1/auth/login", "/v1/auth/signup", "/v1/auth/refresh", "/v1/auth/mfa/verify",
  "/v1/auth/logout", "/v1/auth/request_reset", "/v1/auth/complete_reset", "/v1/auth/verify_email"]);

export function buildUrl(path: string, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined || value === null) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(String(value));
  });
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const qs = search.toString();
  return qs ? `${filled}?${qs}` : filled;
}

export function newId(): string {
  return globalThis.crypto.randomUUID();
}

export class ApiClient {
  private readonly deps: ClientDeps;
  private refreshing: Promise<boolean> | null = null;
  /** Called when a refresh fails: the session is over, the app shows the login. */
  onSessionEnded: () => void = () => {};

  constructor(deps: Partial<ClientDeps> = {}, private readonly policy: RetryPolicy = DEFAULT_RETRY) {
    this.deps = {
      fetch: deps.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      sleep: deps.sleep ?? sleep,
      random: deps.random ?? Math.random,
    };
  }

  /** One refresh at a time: concurrent 401s wait for the same one. */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.send("POST", "/v1/auth/refresh", {}, {})
      .then(async (response) => {
        await readEnvelope<unknown>(response);
        return true;
      })
      .catch(() => false)
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private async send(method: string, url: string, body: unknown, headers: Record<string, string>,
    signal?: AbortSignal): Promise<Response> {
    const init: RequestInit = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
    if (body instanceof FormData) {
      init.body = body; // multipart: fetch writes the Content-Type with its boundary
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    if (signal) init.signal = signal;
    try {
      return await this.deps.fetch(url, init);
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new NetworkError();
    }
  }

  /** The HTTP response of a 2xx answer (the caller reads the body: SSE); errors as ApiError. */
  async raw(req: RawRequest): Promise<Response> {
    const method = req.method.toUpperCase();
    const url = buildUrl(req.path, undefined, req.query);
    const headers: Record<string, string> = { ...req.headers };
    if (method === "POST") headers["Idempotency-Key"] = req.idempotencyKey ?? newId();
    const refresh = req.refresh ?? !NO_REFRESH.has(req.path);
    const policy = { ...this.policy, retries: req.retries ?? this.policy.retries };
    let refreshed = false;
    return withRetry(method, policy, async () => {
      for (;;) {
        const response = await this.send(method, url, req.body, headers, req.signal);
        if (response.ok) return response;
        if (response.status === 401 && refresh && !refreshed) {
          refreshed = true;
          if (await this.refresh()) continue;
          this.onSessionEnded();
        }
        return readEnvelope<never>(response); // throws the envelope's ApiError
      }
    }, this.deps);
  }

  async call<T>(req: RawRequest): Promise<T> {
    return readEnvelope<T>(await this.raw(req));
  }

  private typed(method: HttpMethod, path: string, options: Record<string, unknown> | undefined): Promise<never> {
    const o = (options ?? {}) as {
      path?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown;
      signal?: AbortSignal; retries?: number; idempotencyKey?: string;
    };
    return this.call<never>({
      method, path: buildUrl(path, o.path), query: o.query, body: o.body,
      signal: o.signal, retries: o.retries, idempotencyKey: o.idempotencyKey,
      refresh: !NO_REFRESH.has(path),
    });
  }

  get<P extends PathsWith<"get">>(path: P, ...[options]: Args<Op<P, "get">>): Promise<Data<P, "get">> {
    return this.typed("get", path, options);
  }

  post<P extends PathsWith<"post">>(path: P, ...[options]: Args<Op<P, "post">>): Promise<Data<P, "post">> {
    return this.typed("post", path, options);
  }

  patch<P extends PathsWith<"patch">>(path: P, ...[options]: Args<Op<P, "patch">>): Promise<Data<P, "patch">> {
    return this.typed("patch", path, options);
  }

  delete<P extends PathsWith<"delete">>(path: P, ...[options]: Args<Op<P, "delete">>): Promise<Data<P, "delete">> {
    return this.typed("delete", path, options);
  }
}

export { ApiError };
export const api = new ApiClient();
