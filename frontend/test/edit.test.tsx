// Edit and resubmit: the edited question goes out as `edit_of` and lands as a sibling of the
// original, the new answer under it; the arrows reach the original branch again.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { StreamingTurn, TurnEnd } from "../src/api/stream";
import { MessageList } from "../src/components/chat/MessageList";
import { activeId, editQuestion, messages, path, resetChat, showSibling, streams } from "../src/state/chat";
import { fromApi } from "../src/state/messages";

const CONV = "0b6f6c7e-0000-4000-8000-0000000000c1";
const stored = (id: string, parent: string | null, sender: "user" | "assistant", content: string, seq: number) =>
  fromApi({ id, conversation_id: CONV, parent_id: parent, sender, role: sender, content, content_struct: null, seq, created_at: "2030-01-01T00:00:00Z", token_count_in: null, token_count_out: null, meta: {} });

function open(): void {
  resetChat();
  activeId.value = CONV;
  const all = [stored("q1", null, "user", "Boil an egg?", 1), stored("a1", "q1", "assistant", "Nine minutes.", 2)];
  messages.value = Object.fromEntries(all.map((m) => [m.id, m]));
}

function answering(): { bodies: unknown[]; finish: (end: TurnEnd) => void } {
  const bodies: unknown[] = [];
  let finish: (end: TurnEnd) => void = () => undefined;
  vi.spyOn(streams, "start").mockImplementation((body) => {
    bodies.push(body);
    const done = new Promise<TurnEnd>((resolve) => (finish = resolve));
    return { done, cancel: () => undefined, transport: () => "ws" } satisfies StreamingTurn;
  });
  return { bodies, finish: (end) => finish(end) };
}

const flush = () => act(async () => void (await new Promise((r) => setTimeout(r, 0))));

afterEach(() => {
  vi.restoreAllMocks();
  resetChat();
});

describe("editing a question", () => {
  it("sends edit_of and shows the new version as a sibling with its answer", async () => {
    open();
    const turn = answering();
    expect(editQuestion(messages.value.q1!, "Boil a duck egg?")).toBe(true);
    expect(turn.bodies[0]).toMatchObject({ conversation_id: CONV, edit_of: "q1", message: { content: "Boil a duck egg?" } });
    expect(turn.bodies[0]).not.toHaveProperty("parent_id");
    expect(path.value.map((m) => m.content)).toEqual(["Boil a duck egg?", ""]);

    turn.finish({ kind: "done", data: { request_id: "r", conversation_id: CONV, message_id: "a2", user_message_id: "q2", content_struct: null, usage: {}, adapters: [], trace: {} as never, cancelled: false } });
    await flush();
    expect(path.value.map((m) => m.id)).toEqual(["q2", "a2"]);
    showSibling(messages.value.q2!, -1);
    expect(path.value.map((m) => m.id)).toEqual(["q1", "a1"]);
  });

  it("refuses an empty edit, an answer, and a question not yet stored", () => {
    open();
    const turn = answering();
    expect(editQuestion(messages.value.q1!, "   ")).toBe(false);
    expect(editQuestion(messages.value.a1!, "x")).toBe(false);
    expect(turn.bodies).toEqual([]);
  });

  it("opens in place from the Edit button, and Escape puts the text back", async () => {
    open();
    const turn = answering();
    const root = document.createElement("div");
    document.body.appendChild(root);
    act(() => render(<MessageList />, root));
    const question = root.querySelector('[data-role="user"]')!;
    const edit = [...question.querySelectorAll("button")].find((b) => b.textContent === "Edit")!;
    act(() => edit.click());
    const box = question.querySelector<HTMLTextAreaElement>('textarea[id="edit-q1"]')!;
    expect(box.value).toBe("Boil an egg?");
    const submit = [...question.querySelectorAll("button")].find((b) => b.textContent === "Save and submit")!;
    expect(submit.disabled).toBe(true); // unchanged text is not a new version
    act(() => void box.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true })));
    await flush();
    expect(question.querySelector("textarea")).toBeNull();
    expect(question.textContent).toContain("Boil an egg?");

    act(() => [...question.querySelectorAll("button")].find((b) => b.textContent === "Edit")!.click());
    const again = root.querySelector<HTMLTextAreaElement>('textarea[id="edit-q1"]')!;
    again.value = "Boil two eggs?";
    act(() => void again.dispatchEvent(new Event("input", { bubbles: true })));
    act(() => void again.closest("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })));
    expect(turn.bodies[0]).toMatchObject({ edit_of: "q1", message: { content: "Boil two eggs?" } });
    render(null, root);
    root.remove();
  });
});
