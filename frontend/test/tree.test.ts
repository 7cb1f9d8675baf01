import { describe, expect, it } from "vitest";
import { siblings, visiblePath } from "../src/lib/tree";

const n = (id: string, parentId: string | null, seq: number, hidden = false) => ({ id, parentId, seq, hidden });

//  u1 ── a1
//     └─ a2 (regenerated) ── u2 ── a3
//                         └─ s (summary)
const nodes = [n("u1", null, 1), n("a1", "u1", 2), n("a2", "u1", 3), n("u2", "a2", 4), n("a3", "u2", 5), n("s", "a2", 6, true)];

describe("conversation tree", () => {
  it("follows the newest child at each fork by default, hiding summaries", () => {
    expect(visiblePath(nodes, {}).map((m) => m.id)).toEqual(["u1", "a2", "u2", "a3"]);
  });

  it("follows the selected child", () => {
    expect(visiblePath(nodes, { u1: "a1" }).map((m) => m.id)).toEqual(["u1", "a1"]);
  });

  it("numbers siblings for ‹ 1/2 ›", () => {
    expect(siblings(nodes, nodes[1]!)).toMatchObject({ index: 0, list: [{ id: "a1" }, { id: "a2" }] });
    expect(siblings(nodes, nodes[2]!).index).toBe(1);
    expect(siblings(nodes, nodes[3]!).list).toHaveLength(1);
  });

  it("treats several roots (an edited first question) as siblings", () => {
    const roots = [n("u1", null, 1), n("a1", "u1", 2), n("u1b", null, 3)];
    expect(visiblePath(roots, {}).map((m) => m.id)).toEqual(["u1b"]);
    expect(visiblePath(roots, { "": "u1" }).map((m) => m.id)).toEqual(["u1", "a1"]);
  });
});

describe("messages without a hidden flag", () => {
  it("are visible (an optimistic question and its streaming answer)", () => {
    const local = [{ id: "q", parentId: null, seq: 1 }, { id: "a", parentId: "q", seq: 2 }];
    expect(visiblePath(local, {}).map((m) => m.id)).toEqual(["q", "a"]);
  });
});
