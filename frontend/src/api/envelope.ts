// The API's envelope (docs/api.md): `{status: "ok", data, request_id}` or
// `{status: "error", error: {code, message, details}, request_id}`.

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  readonly requestId: string | null;
  /** Seconds from the Retry-After header (429, 503, 409 busy), when the server sent one. */
  readonly retryAfterS: number | null;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    details?: unknown;
    requestId?: string | null;
    retryAfterS?: number | null;
  }) {
    super(init.message);
    this.name = "ApiError";
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? null;
    this.requestId = init.requestId ?? null;
    this.retryAfterS = init.retryAfterS ?? null;
  }
}

/** The request never got an HTTP answer (offline, DNS, connection reset). */
export class NetworkError extends Error {
  constructor(message = "The server could not be reached. Check your connection.") {
    super(message);
    this.name = "NetworkError";
  }
}

/** Retry-After is either delay-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (value == null) return null;
  const text = value.trim();
  if (text === "") return null;
  if (/^\d+$/.test(text)) return Number.parseInt(text, 10);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - now) / 1000));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An ApiError from a non-2xx answer's parsed body (or null body when it was not JSON). */
export function errorFromBody(status: number, body: unknown, headers: Headers): ApiError {
  const retryAfterS = parseRetryAfter(headers.get("retry-after"));
  const headerId = headers.get("x-request-id");
  if (isRecord(body) && body["status"] === "error" && isRecord(body["error"])) {
    const error = body["error"];
    return new ApiError({
      status,
      code: typeof error["code"] === "string" ? error["code"] : "error",
      message: typeof error["message"] === "string" ? error["message"] : `HTTP ${status}`,
      details: error["details"],
      requestId: typeof body["request_id"] === "string" ? body["request_id"] : headerId,
      retryAfterS,
    });
  }
  return new ApiError({
    status,
    code: status >= 500 ? "server_error" : "error",
    message: `The server answered HTTP ${status}.`,
    requestId: headerId,
    retryAfterS,
  });
}

/** The `data` of a success envelope; throws ApiError for an error envelope or a bad body. */
export async function readEnvelope<T>(response: Response): Promise<T> {
  let body: unknown = null;
  const text = await response.text();
  if (text !== "") {
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = null;
    }
  }
  if (!response.ok) throw errorFromBody(response.status, body, response.headers);
  if (isRecord(body) && body["status"] === "ok" && "data" in body) return body["data"] as T;
  throw new ApiError({
    status: response.status,
    code: "bad_response",
    message: "The server's answer was not in the expected format.",
    requestId: response.headers.get("x-request-id"),
  });
}

/** What to tell the user about a failure: the envelope's message, plus when to try again. */
export function userMessage(error: unknown): string {
  if (error instanceof ApiError) {
    const wait = error.retryAfterS;
    if (error.status === 429) {
      const base = error.message || "Too many requests.";
      return wait != null ? `${base} Try again in ${wait} s.` : `${base} Try again shortly.`;
    }
    if (wait != null && (error.status === 503 || error.status === 409)) {
      return `${error.message} Try again in ${wait} s.`;
    }
    return error.message;
  }
  if (error instanceof NetworkError) return error.message;
  if (error instanceof DOMException && error.name === "AbortError") return "Cancelled.";
  if (error instanceof Error) return error.message;
  return String(error);
}
