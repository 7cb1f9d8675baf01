import { describe, expect, it } from "vitest";
import { diffLines, diffStats, pretty, splitLines } from "../src/lib/linediff";

const ops = (a: string, b: string) => diffLines(a, b)!.map((l) => `${l.op === "added" ? "+" : l.op === "removed" ? "-" : " "}${l.text}`);

describe("line diff", () => {
  it("splits lines, ignoring one final newline", () => {
    expect(splitLines("")).toEqual([]);
    expect(splitLines("a\nb\n")).toEqual(["a", "b"]);
    expect(splitLines("a\n\nb")).toEqual(["a", "", "b"]);
  });

  it("keeps equal texts the same", () => {
    expect(ops("a\nb", "a\nb")).toEqual([" a", " b"]);
    expect(diffStats(diffLines("a\nb", "a\nb")!)).toEqual({ added: 0, removed: 0 });
  });

  it("marks an insertion, a deletion and a change (removed before added)", () => {
    expect(ops("a\nc", "a\nb\nc")).toEqual([" a", "+b", " c"]);
    expect(ops("a\nb\nc", "a\nc")).toEqual([" a", "-b", " c"]);
    expect(ops("a\nb\nc", "a\nB\nc")).toEqual([" a", "-b", "+B", " c"]);
    expect(ops("", "x")).toEqual(["+x"]);
    expect(ops("x", "")).toEqual(["-x"]);
  });

  it("numbers lines in the old and the new text", () => {
    const lines = diffLines("a\nb\nc", "a\nx\nc\nd")!;
    expect(lines.map((l) => [l.op, l.oldNo, l.newNo])).toEqual([
      ["same", 1, 1], ["removed", 2, null], ["added", null, 2], ["same", 3, 3], ["added", null, 4],
    ]);
  });

  it("finds the longest common subsequence between moved blocks", () => {
    const before = ["x", "a", "b", "c", "y"].join("\n");
    const after = ["a", "b", "z", "c"].join("\n");
    const got = diffLines(before, after)!;
    expect(got.filter((l) => l.op === "same").map((l) => l.text)).toEqual(["a", "b", "c"]);
    expect(diffStats(got)).toEqual({ added: 1, removed: 2 });
  });

  it("diffs two pretty-printed schemas by changed lines only", () => {
    const v1 = { kind: "workflow.chat", nodes: [{ id: "answer", type: "llm" }], entrypoint: "answer" };
    const v2 = { ...v1, nodes: [{ id: "answer", type: "llm", timeout_s: 30 }] };
    const got = diffLines(pretty(v1), pretty(v2))!;
    expect(got.filter((l) => l.op !== "same").map((l) => `${l.op} ${l.text.trim()}`)).toEqual([
      'removed "type": "llm"', 'added "type": "llm",', 'added "timeout_s": 30',
    ]);
  });

  it("refuses inputs too large to compare", () => {
    const big = Array.from({ length: 2100 }, (_, i) => `a${i}`).join("\n");
    const other = Array.from({ length: 2100 }, (_, i) => `b${i}`).join("\n");
    expect(diffLines(big, other)).toBeNull();
    expect(diffLines(big, big)).toHaveLength(2100); // equal: prefix only, no table
  });
});
