// The chat turn's streaming events (not in the OpenAPI document): one set of types for both
// transports. SSE labels them with `event:`; the WebSocket wraps them as
// `{event, data, request_id}` frames beside its own control frames (auth_ok, pong, error).
import type { ChatIn } from "./types";

export interface AppliedAdapter {
  id: string;
  weight?: number | null;
  how?: string | null;
  version?: number | null;
}

/** A routed adapter the answer came without: the model service refused it, or the request
 *  could not carry it (`reason`). */
export interface SkippedAdapter {
  id: string;
  version?: number | null;
  weight?: number | null;
  reason: string;
  named?: boolean;
  fallback?: string;
}

export interface CitationSegment {
  type: "citation";
  text?: string;
  source_id: string;
  chunk_id?: string;
  path?: string;
  score?: number;
  /** The sentence of the cited passage, verbatim, that best supports the answer. */
  quote?: string | null;
  meta?: { context_id?: string; heading?: string | string[]; page?: number; start?: number; end?: number } & Record<string, unknown>;
}

export interface Segment {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ContentStruct {
  segments: Segment[];
  summary?: Record<string, string>;
  dropped_segments?: number;
}

export interface RouterTrace {
  policy?: string | null;
  adapters?: AppliedAdapter[];
  rules?: unknown[];
  dropped?: unknown[];
  filtered?: unknown[];
  [key: string]: unknown;
}

export interface WorkflowNodeTrace {
  node: string;
  type?: string;
  tool?: string;
  outcome?: string;
  attempts?: number;
  latency_ms?: number;
  [key: string]: unknown;
}

export interface TurnTrace {
  request_id?: string;
  router?: RouterTrace;
  workflow?: WorkflowNodeTrace[];
  workflow_outcome?: string;
  finish_reason?: string | null;
  kernel_ms?: number;
  cancelled?: boolean;
  [key: string]: unknown;
}

export type TraceData =
  | { stage: "router"; router: RouterTrace }
  | { stage: "workflow"; node: WorkflowNodeTrace };

export interface MessageDoneData {
  request_id: string | null;
  conversation_id: string;
  message_id: string | null;
  user_message_id: string;
  content_struct: ContentStruct | null;
  usage: Record<string, number>;
  adapters: AppliedAdapter[];
  adapters_skipped?: SkippedAdapter[];
  trace: TurnTrace;
  cancelled: boolean;
  replayed?: boolean;
  /** Only in a replay (the whole answer is also sent as one token). */
  content?: string;
}

export interface StreamErrorData {
  code: string;
  message: string;
  details?: unknown;
  request_id?: string;
}

export interface CancelAckData {
  request_id: string;
  message_id: string | null;
  partial_chars: number;
}

export type StreamEvent =
  | { event: "token"; data: string }
  | { event: "trace"; data: TraceData }
  | { event: "message_done"; data: MessageDoneData }
  | { event: "error"; data: StreamErrorData }
  | { event: "cancel_ack"; data: CancelAckData };

export type StreamEventName = StreamEvent["event"];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A typed event from a name and its decoded data, or null for anything unknown or malformed. */
export function toStreamEvent(name: string, data: unknown): StreamEvent | null {
  switch (name) {
    case "token":
      return typeof data === "string" ? { event: "token", data } : null;
    case "trace":
      if (isRecord(data) && data["stage"] === "router" && isRecord(data["router"])) {
        return { event: "trace", data: { stage: "router", router: data["router"] as RouterTrace } };
      }
      if (isRecord(data) && data["stage"] === "workflow" && isRecord(data["node"])) {
        return { event: "trace", data: { stage: "workflow", node: data["node"] as unknown as WorkflowNodeTrace } };
      }
      return null;
    case "message_done":
      return isRecord(data) && typeof data["conversation_id"] === "string"
        ? { event: "message_done", data: data as unknown as MessageDoneData }
        : null;
    case "error":
      return isRecord(data)
        ? {
            event: "error",
            data: {
              ...(data as Partial<StreamErrorData>),
              code: typeof data["code"] === "string" ? data["code"] : "error",
              message: typeof data["message"] === "string" ? data["message"] : "The answer failed.",
            },
          }
        : null;
    case "cancel_ack":
      return isRecord(data) ? { event: "cancel_ack", data: data as unknown as CancelAckData } : null;
    default:
      return null;
  }
}

/** An SSE message (`event:` + JSON `data:`) as a stream event. */
export function fromSse(message: { event: string; data: string }): StreamEvent | null {
  let data: unknown;
  try {
    data = JSON.parse(message.data) as unknown;
  } catch {
    return null;
  }
  return toStreamEvent(message.event, data);
}

// ---- WebSocket frames ----

export type ChatStartBody = Omit<ChatIn, "stream">;

export type ClientFrame =
  | { type: "auth"; session?: string }
  | ({ type: "chat_start" } & ChatStartBody)
  | { type: "cancel"; request_id: string }
  | { type: "ping" };

export type ServerFrame =
  | { kind: "auth_ok"; userId: string }
  | { kind: "pong" }
  | { kind: "error"; code: string; message: string }
  | { kind: "event"; requestId: string; event: StreamEvent };

/** One text frame from the socket, or null for what this client does not understand. */
export function parseServerFrame(text: string): ServerFrame | null {
  let frame: unknown;
  try {
    frame = JSON.parse(text) as unknown;
  } catch {
    return null;
  }
  if (!isRecord(frame)) return null;
  if (typeof frame["event"] === "string") {
    const event = toStreamEvent(frame["event"], frame["data"]);
    if (event === null) return null;
    const requestId = typeof frame["request_id"] === "string" ? frame["request_id"] : "";
    return { kind: "event", requestId, event };
  }
  switch (frame["type"]) {
    case "auth_ok":
      return { kind: "auth_ok", userId: typeof frame["user_id"] === "string" ? frame["user_id"] : "" };
    case "pong":
      return { kind: "pong" };
    case "error": {
      const error = isRecord(frame["error"]) ? frame["error"] : {};
      return {
        kind: "error",
        code: typeof error["code"] === "string" ? error["code"] : "error",
        message: typeof error["message"] === "string" ? error["message"] : "The socket refused a frame.",
      };
    }
    default:
      return null;
  }
}
