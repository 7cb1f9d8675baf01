import { afterEach, describe, expect, it, vi } from "vitest";
import { debounce, DRAFTS_KEY, DraftStore } from "../src/state/drafts";

function memoryStorage(): Storage {
  const data = new Map<string, string>();
  return {
    get length() { return data.size; },
    clear: () => data.clear(),
    getItem: (k) => data.get(k) ?? null,
    key: (i) => [...data.keys()][i] ?? null,
    removeItem: (k) => void data.delete(k),
    setItem: (k, v) => void data.set(k, v),
  };
}

const at = () => new Date("2030-01-01T00:00:00Z");

describe("DraftStore", () => {
  it("keeps drafts per conversation under liminal.drafts, `_new` for a new one", () => {
    const storage = memoryStorage();
    const drafts = new DraftStore(storage, at);
    drafts.set(null, "hello");
    drafts.set("c1", "for c1");
    expect(JSON.parse(storage.getItem(DRAFTS_KEY)!)).toEqual({
      _new: { text: "hello", savedAt: "2030-01-01T00:00:00.000Z" },
      c1: { text: "for c1", savedAt: "2030-01-01T00:00:00.000Z" },
    });
    expect(drafts.get(null)).toBe("hello");
    expect(drafts.get("c1")).toBe("for c1");
    expect(drafts.get("c2")).toBe("");
    expect(drafts.count.value).toBe(2);
  });

  it("removes a draft set to blank, and clears all", () => {
    const storage = memoryStorage();
    const drafts = new DraftStore(storage, at);
    drafts.set("c1", "x");
    drafts.set("c1", "   ");
    expect(drafts.count.value).toBe(0);
    expect(storage.getItem(DRAFTS_KEY)).toBeNull();
    drafts.set("a", "1");
    drafts.set("b", "2");
    drafts.clearAll();
    expect(drafts.all()).toEqual({});
  });

  it("gives the new-conversation draft to the conversation once it exists", () => {
    const drafts = new DraftStore(memoryStorage(), at);
    drafts.set(null, "typing while the first answer streams");
    drafts.adopt("c9");
    expect(drafts.get("c9")).toBe("typing while the first answer streams");
    expect(drafts.get(null)).toBe("");
  });

  it("survives corrupt storage and missing storage", () => {
    const storage = memoryStorage();
    storage.setItem(DRAFTS_KEY, "{not json");
    expect(new DraftStore(storage).all()).toEqual({});
    storage.setItem(DRAFTS_KEY, JSON.stringify({ ok: { text: "t", savedAt: "s" }, bad: 5 }));
    expect(new DraftStore(storage).all()).toEqual({ ok: { text: "t", savedAt: "s" } });
    const none = new DraftStore(null);
    none.set("c", "x");
    expect(none.get("c")).toBe("");
  });

  it("exports JSON", () => {
    const drafts = new DraftStore(memoryStorage(), at);
    drafts.set("c1", "x");
    expect(JSON.parse(drafts.exportJson())).toEqual({ c1: { text: "x", savedAt: "2030-01-01T00:00:00.000Z" } });
  });
});

describe("debounce", () => {
  afterEach(() => vi.useRealTimers());

  it("saves once, 1 s after the last keystroke; flush saves at once", () => {
    vi.useFakeTimers();
    const save = vi.fn();
    const d = debounce(save, 1000);
    d("a");
    vi.advanceTimersByTime(500);
    d("ab");
    vi.advanceTimersByTime(999);
    expect(save).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(save).toHaveBeenCalledExactlyOnceWith("ab");
    d("abc");
    d.flush();
    expect(save).toHaveBeenLastCalledWith("abc");
    d("x");
    d.cancel();
    vi.advanceTimersByTime(2000);
    expect(save).toHaveBeenCalledTimes(2);
  });
});
