import { describe, expect, it } from "vitest";
import { readSse, SseParser, type SseMessage } from "../src/api/sse";

const STREAM =
  ": keep-alive comment\r\n" +
  "event: trace\r\ndata: {\"stage\":\"router\",\"router\":{}}\r\n\r\n" +
  "event: token\ndata: \"Hel\"\n\n" +
  "event: token\ndata: \"lo ü €\"\n\n" +
  "data: line one\ndata: line two\n\n" +
  "event:message_done\rdata:{\"ok\":true}\r\r" +
  "event: ignored-without-data\n\n" +
  "id: 7\nevent: error\ndata\n\n";

const EXPECTED: SseMessage[] = [
  { event: "trace", data: '{"stage":"router","router":{}}', id: null },
  { event: "token", data: '"Hel"', id: null },
  { event: "token", data: '"lo ü €"', id: null },
  { event: "message", data: "line one\nline two", id: null },
  { event: "message_done", data: '{"ok":true}', id: null },
  { event: "error", data: "", id: "7" },
];

function parseInPieces(pieces: string[]): SseMessage[] {
  const parser = new SseParser();
  const out: SseMessage[] = [];
  for (const p of pieces) out.push(...parser.push(p));
  out.push(...parser.end());
  return out;
}

describe("SseParser", () => {
  it("parses a whole stream: events, multi-line data, comments, CR/LF/CRLF endings", () => {
    expect(parseInPieces([STREAM])).toEqual(EXPECTED);
  });

  it("gives the same messages whatever the chunk boundaries (every split point)", () => {
    for (let i = 0; i <= STREAM.length; i++) {
      expect(parseInPieces([STREAM.slice(0, i), STREAM.slice(i)])).toEqual(EXPECTED);
    }
  });

  it("handles one character at a time (a CRLF split between its two characters included)", () => {
    expect(parseInPieces([...STREAM])).toEqual(EXPECTED);
  });

  it("drops a message the stream ends before closing", () => {
    expect(parseInPieces(["event: token\ndata: \"partial\""])).toEqual([]);
  });

  it("strips exactly one space after the colon", () => {
    expect(parseInPieces(["data:  two spaces\n\n"])).toEqual([{ event: "message", data: " two spaces", id: null }]);
  });
});

describe("readSse", () => {
  it("decodes UTF-8 split across byte chunks", async () => {
    const bytes = new TextEncoder().encode("event: token\ndata: \"€ü\"\n\n");
    const euro = bytes.indexOf(0xe2);
    const chunks = [bytes.slice(0, euro + 1), bytes.slice(euro + 1, euro + 2), bytes.slice(euro + 2)];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        controller.close();
      },
    });
    const got: SseMessage[] = [];
    await readSse(body, (m) => got.push(m));
    expect(got).toEqual([{ event: "token", data: '"€ü"', id: null }]);
  });
});
