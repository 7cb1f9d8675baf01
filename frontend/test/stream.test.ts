import { beforeEach, describe, expect, it } from "vitest";
import { ApiClient } from "../src/api/client";
import type { StreamEvent } from "../src/api/events";
import { ChatSocket } from "../src/api/socket";
import { ChatStreams } from "../src/api/stream";
import { FakeSocket, tick } from "./fakeSocket";
import { fakeFetch, header, ok } from "./helpers";

const body = { conversation_id: null, message: { content: "hi", mode: "text" as const }, client_request_id: "key-1" };
const DONE = { request_id: "rid", conversation_id: "c1", message_id: "m2", user_message_id: "m1", content_struct: null, usage: {}, adapters: [], trace: {}, cancelled: false };

function sse(text: string, headers: Record<string, string> = {}): Response {
  return new Response(text, { status: 200, headers: { "content-type": "text/event-stream", "x-request-id": "rid", ...headers } });
}

beforeEach(() => {
  FakeSocket.instances = [];
});

describe("ChatStreams", () => {
  it("streams over the WebSocket when it authenticates", async () => {
    const { fetch, calls } = fakeFetch([]);
    const api = new ApiClient({ fetch, sleep: async () => {} });
    const socket = new ChatSocket("ws://x", () => null, (u) => new FakeSocket(u) as unknown as WebSocket);
    const events: StreamEvent[] = [];
    const turn = new ChatStreams(api, socket).start(body, (e) => events.push(e));
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive({ type: "auth_ok", user_id: "u" });
    await tick();
    ws.receive({ event: "token", data: "Hi", request_id: "rid" });
    ws.receive({ event: "message_done", data: DONE, request_id: "rid" });
    await expect(turn.done).resolves.toEqual({ kind: "done", data: DONE });
    expect(turn.transport()).toBe("ws");
    expect(calls).toHaveLength(0);
    expect(events.map((e) => e.event)).toEqual(["token", "message_done"]);
  });

  it("falls back to SSE when the socket fails, with the turn's key as Idempotency-Key", async () => {
    const stream = "event: token\ndata: \"Hel\"\n\nevent: token\ndata: \"lo\"\n\nevent: message_done\ndata: " + JSON.stringify(DONE) + "\n\n";
    const { fetch, calls } = fakeFetch([sse(stream)]);
    const api = new ApiClient({ fetch, sleep: async () => {} });
    const socket = new ChatSocket("ws://x", () => null, (u) => new FakeSocket(u) as unknown as WebSocket);
    const tokens: string[] = [];
    const turn = new ChatStreams(api, socket).start(body, (e) => e.event === "token" && tokens.push(e.data));
    FakeSocket.latest().close(1006);
    await expect(turn.done).resolves.toEqual({ kind: "done", data: DONE });
    expect(turn.transport()).toBe("sse");
    expect(tokens.join("")).toBe("Hello");
    expect(calls[0]!.url).toBe("/v1/chat");
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ ...body, stream: true });
    expect(header(calls[0]!, "Idempotency-Key")).toBe("key-1");
    expect(header(calls[0]!, "Accept")).toBe("text/event-stream");
  });

  it("stops an SSE turn with POST /v1/chat/cancel naming the X-Request-Id, keeping the partial answer", async () => {
    let push: (text: string) => void = () => {};
    let end: () => void = () => {};
    const body$ = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (t) => controller.enqueue(new TextEncoder().encode(t));
        end = () => controller.close();
      },
    });
    const { fetch, calls } = fakeFetch([
      new Response(body$, { status: 200, headers: { "content-type": "text/event-stream", "x-request-id": "rid" } }),
      ok({ request_id: "rid", cancelling: true }),
    ]);
    const api = new ApiClient({ fetch, sleep: async () => {} });
    const turn = new ChatStreams(api, null).start(body, () => {});
    push("event: token\ndata: \"part\"\n\n");
    await tick();
    turn.cancel();
    await tick();
    expect(calls[1]!.url).toBe("/v1/chat/cancel");
    expect(JSON.parse(String(calls[1]!.init.body))).toEqual({ request_id: "rid" });
    push('event: cancel_ack\ndata: {"request_id":"rid","message_id":"m2","partial_chars":4}\n\n');
    push("event: message_done\ndata: " + JSON.stringify({ ...DONE, cancelled: true }) + "\n\n");
    end();
    const result = await turn.done;
    expect(result.kind === "done" && result.data.cancelled).toBe(true);
  });

  it("reports a refused SSE turn with the envelope's message and Retry-After", async () => {
    const { fetch } = fakeFetch([
      new Response(JSON.stringify({ status: "error", error: { code: "rate_limited", message: "Slow down.", details: null }, request_id: "r" }), {
        status: 429, headers: { "retry-after": "12" },
      }),
    ]);
    const turn = new ChatStreams(new ApiClient({ fetch, sleep: async () => {} }), null).start(body, () => {});
    await expect(turn.done).resolves.toEqual({ kind: "error", data: { code: "request_failed", message: "Slow down. Try again in 12 s." } });
  });

  it("passes on an error event from the stream", async () => {
    const { fetch } = fakeFetch([sse('event: error\ndata: {"code":"unavailable","message":"The model is busy."}\n\n')]);
    const turn = new ChatStreams(new ApiClient({ fetch, sleep: async () => {} }), null).start(body, () => {});
    await expect(turn.done).resolves.toEqual({ kind: "error", data: { code: "unavailable", message: "The model is busy." } });
  });
});
