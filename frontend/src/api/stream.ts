// One chat turn, streamed: over the WebSocket when it works, else over SSE (`POST /v1/chat`
// with `stream: true`). Both paths yield the same StreamEvent values (events.ts). The turn's
// `client_request_id` doubles as its Idempotency-Key, so a turn whose socket died after
// chat_start is not run twice by the SSE fallback: the server replays it or answers 409.
import type { ApiClient } from "./client";
import { userMessage } from "./envelope";
import { type ChatStartBody, fromSse, type MessageDoneData, type StreamErrorData, type StreamEvent } from "./events";
import { ChatSocket, SocketFailure, type TurnHandle } from "./socket";
import { readSse } from "./sse";

export type TurnEnd =
  | { kind: "done"; data: MessageDoneData }
  | { kind: "error"; data: StreamErrorData }
  /** The connection dropped mid-answer: the server still stores the answer. */
  | { kind: "lost"; message: string };

export interface StreamingTurn {
  done: Promise<TurnEnd>;
  /** Stops the answer (it is kept, partial, and ends with message_done cancelled: true). */
  cancel(): void;
  transport(): "ws" | "sse" | null;
}

export type StartBody = ChatStartBody & { client_request_id: string };

export interface ChatStreamsOptions {
  /** Seconds to keep using SSE after the socket failed. */
  socketCooldownS?: number;
  now?: () => number;
}

export class ChatStreams {
  private socketDownUntil = 0;
  private readonly cooldownMs: number;
  private readonly now: () => number;

  constructor(private readonly api: ApiClient, private readonly socket: ChatSocket | null, options: ChatStreamsOptions = {}) {
    this.cooldownMs = (options.socketCooldownS ?? 30) * 1000;
    this.now = options.now ?? Date.now;
  }

  start(body: StartBody, onEvent: (event: StreamEvent) => void): StreamingTurn {
    let cancelWanted = false;
    let cancelNow: (() => void) | null = null;
    let via: "ws" | "sse" | null = null;
    const setCancel = (fn: () => void) => {
      cancelNow = fn;
      if (cancelWanted) fn();
    };
    const run = async (): Promise<TurnEnd> => {
      if (this.socket && this.now() >= this.socketDownUntil) {
        via = "ws";
        const end = await this.viaSocket(this.socket, body, onEvent, setCancel);
        if (end !== null) return end;
        this.socketDownUntil = this.now() + this.cooldownMs;
      }
      via = "sse";
      return this.viaSse(body, onEvent, setCancel);
    };
    return {
      done: run(),
      transport: () => via,
      cancel: () => {
        cancelWanted = true;
        cancelNow?.();
      },
    };
  }

  /** null: the socket could not start the turn (fall back to SSE). */
  private async viaSocket(socket: ChatSocket, body: StartBody, onEvent: (e: StreamEvent) => void,
    setCancel: (fn: () => void) => void): Promise<TurnEnd | null> {
    try {
      await this.connect(socket);
    } catch {
      return null;
    }
    let handle: TurnHandle;
    try {
      handle = socket.start(body, onEvent);
    } catch {
      return null;
    }
    setCancel(() => handle.cancel());
    try {
      const last = await handle.done;
      if (last.event === "message_done") return { kind: "done", data: last.data };
      if (last.event === "error") return { kind: "error", data: last.data };
      return { kind: "lost", message: "The answer ended unexpectedly." };
    } catch (error) {
      if (error instanceof SocketFailure && !error.gotEvents) return null;
      return { kind: "lost", message: "The connection dropped while the answer was written; it is still being stored." };
    }
  }

  private async connect(socket: ChatSocket): Promise<void> {
    try {
      await socket.connect();
    } catch (error) {
      // An expired access cookie: refresh the session once and try again.
      if (error instanceof SocketFailure && error.unauthorized && (await this.api.refresh())) {
        await socket.connect();
        return;
      }
      throw error;
    }
  }

  private async viaSse(body: StartBody, onEvent: (e: StreamEvent) => void,
    setCancel: (fn: () => void) => void): Promise<TurnEnd> {
    let response: Response;
    try {
      response = await this.api.raw({
        method: "POST",
        path: "/v1/chat",
        body: { ...body, stream: true },
        headers: { Accept: "text/event-stream" },
        idempotencyKey: body.client_request_id,
        retries: 0,
      });
    } catch (error) {
      return { kind: "error", data: { code: "request_failed", message: userMessage(error) } };
    }
    let requestId = response.headers.get("x-request-id");
    const cancel = () => {
      if (requestId) void this.api.post("/v1/chat/cancel", { body: { request_id: requestId } }).catch(() => {});
    };
    setCancel(cancel);
    let last: StreamEvent | null = null;
    if (!response.body) return { kind: "lost", message: "The answer could not be read." };
    try {
      await readSse(response.body, (message) => {
        const event = fromSse(message);
        if (event === null) return;
        if (event.event === "message_done" && event.data.request_id) requestId ??= event.data.request_id;
        last = event;
        onEvent(event);
      });
    } catch {
      return { kind: "lost", message: "The connection dropped while the answer was written; it is still being stored." };
    }
    const end = last as StreamEvent | null;
    if (end?.event === "message_done") return { kind: "done", data: end.data };
    if (end?.event === "error") return { kind: "error", data: end.data };
    return { kind: "lost", message: "The answer ended before it was complete." };
  }
}
