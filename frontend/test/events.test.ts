import { describe, expect, it } from "vitest";
import { fromSse, parseServerFrame, toStreamEvent } from "../src/api/events";

const DONE = {
  request_id: "r1", conversation_id: "c1", message_id: "m2", user_message_id: "m1",
  content_struct: { segments: [{ type: "text", text: "hi" }] }, usage: {}, adapters: [], trace: {}, cancelled: false,
};

describe("stream events (shared by SSE and WebSocket)", () => {
  it("types each known event and refuses malformed ones", () => {
    expect(toStreamEvent("token", "abc")).toEqual({ event: "token", data: "abc" });
    expect(toStreamEvent("token", 5)).toBeNull();
    expect(toStreamEvent("trace", { stage: "router", router: { policy: "p" } })).toEqual({
      event: "trace", data: { stage: "router", router: { policy: "p" } },
    });
    expect(toStreamEvent("trace", { stage: "workflow", node: { node: "n1" } })?.event).toBe("trace");
    expect(toStreamEvent("trace", { stage: "other" })).toBeNull();
    expect(toStreamEvent("message_done", DONE)).toEqual({ event: "message_done", data: DONE });
    expect(toStreamEvent("message_done", { nope: 1 })).toBeNull();
    expect(toStreamEvent("cancel_ack", { request_id: "r1", message_id: null, partial_chars: 3 })?.event).toBe("cancel_ack");
    expect(toStreamEvent("surprise", {})).toBeNull();
  });

  it("fills an error event's code and message when missing", () => {
    expect(toStreamEvent("error", { code: "busy", message: "Busy", details: { reason: "busy" } })).toEqual({
      event: "error", data: { code: "busy", message: "Busy", details: { reason: "busy" } },
    });
    expect(toStreamEvent("error", {})).toEqual({ event: "error", data: { code: "error", message: "The answer failed." } });
  });

  it("decodes SSE data as JSON", () => {
    expect(fromSse({ event: "token", data: '"x"' })).toEqual({ event: "token", data: "x" });
    expect(fromSse({ event: "token", data: "not json" })).toBeNull();
  });
});

describe("WebSocket frames", () => {
  it("reads control frames", () => {
    expect(parseServerFrame('{"type":"auth_ok","user_id":"u1"}')).toEqual({ kind: "auth_ok", userId: "u1" });
    expect(parseServerFrame('{"type":"pong"}')).toEqual({ kind: "pong" });
    expect(parseServerFrame('{"type":"error","error":{"code":"unauthorized","message":"no"}}')).toEqual({
      kind: "error", code: "unauthorized", message: "no",
    });
  });

  it("reads {event, data, request_id} frames into the same events as SSE", () => {
    expect(parseServerFrame('{"event":"token","data":"Hi","request_id":"r9"}')).toEqual({
      kind: "event", requestId: "r9", event: { event: "token", data: "Hi" },
    });
    const done = parseServerFrame(JSON.stringify({ event: "message_done", data: DONE, request_id: "r9" }));
    expect(done).toEqual({ kind: "event", requestId: "r9", event: fromSse({ event: "message_done", data: JSON.stringify(DONE) }) });
  });

  it("ignores what it does not understand", () => {
    expect(parseServerFrame("{")).toBeNull();
    expect(parseServerFrame("[1]")).toBeNull();
    expect(parseServerFrame('{"type":"mystery"}')).toBeNull();
    expect(parseServerFrame('{"event":"mystery","data":1}')).toBeNull();
  });
});
