import { beforeEach, describe, expect, it } from "vitest";
import type { StreamEvent } from "../src/api/events";
import { ChatSocket, SocketFailure, socketUrl } from "../src/api/socket";
import { FakeSocket, tick } from "./fakeSocket";

const body = { conversation_id: null, message: { content: "hi", mode: "text" as const }, client_request_id: "k1" };

function make(session: string | null = "0b6f6c7e-0000-4000-8000-000000000001") {
  return new ChatSocket("ws://x/v1/chat/stream", () => session, (u) => new FakeSocket(u) as unknown as WebSocket, 1000);
}

beforeEach(() => {
  FakeSocket.instances = [];
});

describe("ChatSocket", () => {
  it("builds the socket URL from the page's origin", () => {
    expect(socketUrl({ protocol: "https:", host: "chat.example" })).toBe("wss://chat.example/v1/chat/stream");
    expect(socketUrl({ protocol: "http:", host: "127.0.0.1:8080" })).toBe("ws://127.0.0.1:8080/v1/chat/stream");
  });

  it("sends the auth frame first, then chat_start, and routes the turn's events", async () => {
    const socket = make();
    const ready = socket.connect();
    const ws = FakeSocket.latest();
    ws.open();
    expect(ws.sent).toEqual([{ type: "auth", session: "0b6f6c7e-0000-4000-8000-000000000001" }]);
    ws.receive({ type: "auth_ok", user_id: "u1" });
    await ready;

    const events: StreamEvent[] = [];
    const turn = socket.start(body, (e) => events.push(e));
    expect(ws.sent[1]).toEqual({ type: "chat_start", ...body });
    ws.receive({ event: "trace", data: { stage: "router", router: {} }, request_id: "r1" });
    ws.receive({ event: "token", data: "Hel", request_id: "r1" });
    ws.receive({ event: "token", data: "lo", request_id: "r1" });
    ws.receive({ event: "token", data: "ignored: another turn", request_id: "r2" });
    ws.receive({ type: "pong" });
    const done = { request_id: "r1", conversation_id: "c1", message_id: "m2", user_message_id: "m1", content_struct: null, usage: {}, adapters: [], trace: {}, cancelled: false };
    ws.receive({ event: "message_done", data: done, request_id: "r1" });
    await expect(turn.done).resolves.toEqual({ event: "message_done", data: done });
    expect(events.filter((e) => e.event === "token").map((e) => e.data)).toEqual(["Hel", "lo"]);
    expect(turn.requestId()).toBe("r1");
    expect(socket.busy).toBe(false);
  });

  it("sends the auth frame without a session when none is known (the cookie alone)", async () => {
    const socket = make(null);
    void socket.connect();
    FakeSocket.latest().open();
    expect(FakeSocket.latest().sent).toEqual([{ type: "auth" }]);
  });

  it("holds a Stop pressed before the turn's request id is known, then sends the cancel frame", async () => {
    const socket = make();
    const ready = socket.connect();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive({ type: "auth_ok", user_id: "u1" });
    await ready;
    const turn = socket.start(body, () => {});
    turn.cancel();
    expect(ws.sent.filter((f) => f["type"] === "cancel")).toEqual([]);
    ws.receive({ event: "token", data: "partial", request_id: "r7" });
    expect(ws.sent[ws.sent.length - 1]).toEqual({ type: "cancel", request_id: "r7" });
    ws.receive({ event: "cancel_ack", data: { request_id: "r7", message_id: "m9", partial_chars: 7 }, request_id: "r7" });
    const done = { request_id: "r7", conversation_id: "c", message_id: "m9", user_message_id: "m8", content_struct: null, usage: {}, adapters: [], trace: {}, cancelled: true };
    ws.receive({ event: "message_done", data: done, request_id: "r7" });
    const last = await turn.done;
    expect(last.event === "message_done" && last.data.cancelled).toBe(true);
  });

  it("fails as unauthorized when closed with 4401 before auth_ok", async () => {
    const socket = make();
    const ready = socket.connect();
    const ws = FakeSocket.latest();
    ws.open();
    ws.close(4401);
    const err = (await ready.catch((e: unknown) => e)) as SocketFailure;
    expect(err).toBeInstanceOf(SocketFailure);
    expect(err.unauthorized).toBe(true);
  });

  it("fails as unauthorized on an error frame (the AWS variant)", async () => {
    const socket = make();
    const ready = socket.connect();
    FakeSocket.latest().open();
    FakeSocket.latest().receive({ type: "error", error: { code: "unauthorized", message: "log in" } });
    await expect(ready).rejects.toMatchObject({ unauthorized: true, message: "log in" });
  });

  it("rejects the running turn when the socket drops, saying whether events had arrived", async () => {
    const socket = make();
    const ready = socket.connect();
    const ws = FakeSocket.latest();
    ws.open();
    ws.receive({ type: "auth_ok", user_id: "u1" });
    await ready;
    const turn = socket.start(body, () => {});
    ws.receive({ event: "token", data: "a", request_id: "r1" });
    ws.close(1006);
    await expect(turn.done).rejects.toMatchObject({ started: true, gotEvents: true });
    await tick();
  });

  it("times out an auth that never answers", async () => {
    const socket = new ChatSocket("ws://x", () => null, (u) => new FakeSocket(u) as unknown as WebSocket, 5);
    const ready = socket.connect();
    FakeSocket.latest().open();
    await expect(ready).rejects.toBeInstanceOf(SocketFailure);
  });
});
