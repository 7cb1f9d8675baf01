// The chat WebSocket (/v1/chat/stream): the auth frame first (the session id with the session's
// cookie, or the cookie alone), `auth_ok`, then `chat_start` frames; each turn's events come back
// as `{event, data, request_id}`. One turn at a time per socket: the first event frame after a
// `chat_start` names its request id, which a `cancel` frame needs.
import {
  type ChatStartBody,
  type ClientFrame,
  parseServerFrame,
  type ServerFrame,
  type StreamEvent,
} from "./events";

export type SocketFactory = (url: string) => WebSocket;

/** Why the socket could not carry a turn. `started`: a chat_start had been sent (the server
 *  may be running the turn); `unauthorized`: refused with 4401 or an unauthorized error. */
export class SocketFailure extends Error {
  constructor(message: string, readonly started: boolean, readonly unauthorized: boolean, readonly gotEvents: boolean) {
    super(message);
    this.name = "SocketFailure";
  }
}

export interface TurnHandle {
  /** Resolves with the last event (message_done or error); rejects with a SocketFailure. */
  done: Promise<StreamEvent>;
  cancel(): void;
  requestId(): string | null;
}

interface ActiveTurn {
  onEvent: (event: StreamEvent) => void;
  requestId: string | null;
  cancelWanted: boolean;
  gotEvents: boolean;
  resolve: (event: StreamEvent) => void;
  reject: (error: SocketFailure) => void;
}

export function socketUrl(loc: Pick<Location, "protocol" | "host"> = window.location): string {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/v1/chat/stream`;
}

export class ChatSocket {
  private ws: WebSocket | null = null;
  private ready: Promise<void> | null = null;
  private turn: ActiveTurn | null = null;

  constructor(
    private readonly url: string,
    private readonly sessionId: () => string | null,
    private readonly factory: SocketFactory = (u) => new WebSocket(u),
    private readonly authTimeoutMs = 10_000,
  ) {}

  get busy(): boolean {
    return this.turn !== null;
  }

  close(): void {
    this.ws?.close(1000);
    this.ws = null;
    this.ready = null;
  }

  /** Opens and authenticates the socket (once; later calls reuse it while it is open). */
  connect(): Promise<void> {
    if (this.ready && this.ws && this.ws.readyState <= 1) return this.ready;
    const ws = this.factory(this.url);
    this.ws = ws;
    this.ready = new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (message: string, unauthorized: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this.ws === ws) this.ready = null;
        reject(new SocketFailure(message, false, unauthorized, false));
      };
      const timer = setTimeout(() => {
        fail("The socket did not authenticate in time.", false);
        ws.close();
      }, this.authTimeoutMs);
      ws.addEventListener("open", () => {
        const session = this.sessionId();
        this.send(session ? { type: "auth", session } : { type: "auth" });
      });
      ws.addEventListener("message", (msg: MessageEvent) => {
        const frame = typeof msg.data === "string" ? parseServerFrame(msg.data) : null;
        if (frame === null) return;
        if (!settled && frame.kind === "auth_ok") {
          settled = true;
          clearTimeout(timer);
          resolve();
          return;
        }
        if (!settled && frame.kind === "error") {
          fail(frame.message, frame.code === "unauthorized");
          return;
        }
        this.onFrame(frame);
      });
      ws.addEventListener("close", (ev: CloseEvent) => {
        fail(`The socket closed (${ev.code}).`, ev.code === 4401);
        if (this.ws === ws) {
          this.ws = null;
          this.ready = null;
        }
        this.failTurn(`The connection closed (${ev.code}).`);
      });
      ws.addEventListener("error", () => {
        // A close event follows; nothing more to do here.
      });
    });
    return this.ready;
  }

  /** Starts a turn on the authenticated socket. */
  start(body: ChatStartBody, onEvent: (event: StreamEvent) => void): TurnHandle {
    if (this.turn) throw new Error("a turn is already running on this socket");
    let turn!: ActiveTurn;
    const done = new Promise<StreamEvent>((resolve, reject) => {
      turn = { onEvent, requestId: null, cancelWanted: false, gotEvents: false, resolve, reject };
    });
    this.turn = turn;
    if (!this.send({ type: "chat_start", ...body })) {
      this.turn = null;
      turn.reject(new SocketFailure("The socket is not open.", false, false, false));
    }
    return {
      done,
      requestId: () => turn.requestId,
      cancel: () => {
        turn.cancelWanted = true;
        if (turn.requestId) this.send({ type: "cancel", request_id: turn.requestId });
      },
    };
  }

  private send(frame: ClientFrame): boolean {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  private onFrame(frame: ServerFrame): void {
    const turn = this.turn;
    if (frame.kind !== "event" || turn === null) return;
    if (turn.requestId === null && frame.requestId) {
      turn.requestId = frame.requestId;
      if (turn.cancelWanted) this.send({ type: "cancel", request_id: frame.requestId });
    } else if (frame.requestId && frame.requestId !== turn.requestId) {
      return; // another turn's frame (none expected: one turn per socket)
    }
    turn.gotEvents = true;
    turn.onEvent(frame.event);
    // A cancel the server could not apply (no such running turn) is an error event too, and
    // the turn's own events still follow: only the turn's own errors end it.
    const cancelRefused = frame.event.event === "error" && turn.cancelWanted && frame.event.data.code === "not_found";
    const ends = frame.event.event === "message_done" || (frame.event.event === "error" && !cancelRefused);
    if (ends) {
      this.turn = null;
      turn.resolve(frame.event);
    }
  }

  private failTurn(message: string): void {
    const turn = this.turn;
    if (!turn) return;
    this.turn = null;
    turn.reject(new SocketFailure(message, true, false, turn.gotEvents));
  }
}
