// The accessible names the browser tests rely on, and one optimistic, streamed turn.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StreamEvent } from "../src/api/events";
import type { StreamingTurn, TurnEnd } from "../src/api/stream";
import { AuthPanel } from "../src/components/auth/AuthPanel";
import { MessageItem } from "../src/components/chat/MessageItem";
import { MessageList } from "../src/components/chat/MessageList";
import { Composer } from "../src/components/chat/Composer";
import { Header } from "../src/components/Header";
import { auth } from "../src/state/auth";
import { activeId, messages, path, resetChat, send, stop, streams, streaming } from "../src/state/chat";
import { fromApi, localMessage } from "../src/state/messages";

let root: HTMLElement;
beforeEach(() => {
  root = document.createElement("div");
  document.body.appendChild(root);
  resetChat();
});
afterEach(() => {
  render(null, root);
  root.remove();
});

const byRole = (role: string, name: string) =>
  [...root.querySelectorAll<HTMLElement>(role === "button" ? "button" : `[role="${role}"]`)].filter((el) =>
    (el.getAttribute("aria-label") ?? el.textContent ?? "").trim() === name,
  );
const labelled = (name: string) =>
  [...root.querySelectorAll("label")].find((l) => (l.textContent ?? "").trim() === name)?.querySelector("input, textarea") ??
  root.querySelector(`#${[...root.querySelectorAll("label")].find((l) => l.textContent?.trim() === name)?.htmlFor ?? "none"}`);

describe("accessible names", () => {
  it("auth: Email, Password, Log in, Sign up", () => {
    auth.value = { status: "anonymous" };
    act(() => render(<AuthPanel />, root));
    expect(labelled("Email")).toBeTruthy();
    expect(labelled("Password")).toBeTruthy();
    expect(byRole("button", "Log in")).toHaveLength(1);
    expect(byRole("button", "Sign up")).toHaveLength(1);
  });

  it("MFA step: MFA code", () => {
    auth.value = { status: "mfa", ticket: "t".repeat(20), email: "a@b.c" };
    act(() => render(<AuthPanel />, root));
    expect(labelled("MFA code")).toBeTruthy();
    expect(byRole("button", "Log in")).toHaveLength(1);
  });

  it("header: the five tabs and Log out", () => {
    const user = { id: "u", email: "a@b.c", handle: null, role: "user", created_at: "2030-01-01T00:00:00Z", email_verified: true };
    act(() => render(<Header user={user} tab="chat" drawerOpen={false} onToggleDrawer={() => {}} />, root));
    const tabs = [...root.querySelectorAll('[role="tab"]')].map((t) => t.textContent);
    expect(tabs).toEqual(["Chat", "Contexts", "Artifacts", "Settings", "Your model"]);
    expect(root.querySelector('[role="tab"][aria-selected="true"]')?.textContent).toBe("Chat");
    expect(byRole("button", "Log out")).toHaveLength(1);
  });

  it("a finished answer: data-role, rendered Markdown, Regenerate and feedback buttons", () => {
    const m = { ...localMessage({ id: "m2", parentId: "m1", seq: 2, role: "assistant", content: "**Hi** <img src=x onerror=alert(1)>", status: "done" }) };
    act(() => render(<MessageItem message={m} isLatestAnswer={true} />, root));
    const el = root.querySelector('[data-role="assistant"]')!;
    expect(el.querySelector("strong")?.textContent).toBe("Hi");
    expect(el.querySelector("img")).toBeNull();
    for (const name of ["Regenerate", "Good answer", "Bad answer", "Correct this answer"]) expect(byRole("button", name)).toHaveLength(1);
    expect(root.querySelector("details.why summary")?.textContent).toBe("Why this answer");
  });

  it("Why this answer says which routed adapters the answer came without, and why", () => {
    const m = fromApi({
      id: "m2", parent_id: "m1", seq: 2, role: "assistant", content: "x", content_struct: null, created_at: "2030-01-01T00:00:00Z",
      meta: { adapters: [], adapters_skipped: [
        { id: "0b1c2d3e-0000-4000-8000-000000000001", version: 3, weight: 0.7, reason: "files_missing", named: true },
        { id: "0b1c2d3e-0000-4000-8000-000000000002", version: 1, weight: 0.3, reason: "refused", named: false, fallback: "prompt" },
      ] },
    } as never);
    act(() => render(<MessageItem message={m} isLatestAnswer={true} />, root));
    const note = root.querySelector('details.why [role="note"]')!;
    expect(note.textContent).toContain("came without 2 adapters the router chose");
    const items = [...note.querySelectorAll("li")].map((li) => li.textContent);
    expect(items[0]).toContain("v3: its files are missing");
    expect(items[1]).toContain("the model service could not use it (its instructions were still used)");
    const dropped = fromApi({
      id: "m4", parent_id: "m1", seq: 4, role: "assistant", content: "z", content_struct: null, created_at: "2030-01-01T00:00:00Z",
      meta: { adapters: [], adapters_skipped: [
        { id: "0b1c2d3e-0000-4000-8000-000000000003", weight: 0.2, reason: "max_adapters", fallback: "prompt" },
      ] },
    } as never);
    act(() => render(<MessageItem message={dropped} isLatestAnswer={true} />, root));
    const dropNote = root.querySelector('details.why [role="note"]')!;
    expect(dropNote.textContent).toContain("came without an adapter the router chose");
    expect(dropNote.querySelector("li")?.textContent).toContain(
      "takes fewer adapters at once, and the stronger ones were used (its instructions were still used)",
    );
    const plain = localMessage({ id: "m3", parentId: "m1", seq: 3, role: "assistant", content: "y", status: "done" });
    act(() => render(<MessageItem message={plain} isLatestAnswer={true} />, root));
    expect(root.querySelector('details.why [role="note"]')).toBeNull();
  });

  it("an older answer has feedback but no Regenerate", () => {
    const m = localMessage({ id: "m2", parentId: "m1", seq: 2, role: "assistant", content: "x", status: "done" });
    act(() => render(<MessageItem message={m} isLatestAnswer={false} />, root));
    expect(byRole("button", "Regenerate")).toHaveLength(0);
    expect(byRole("button", "Good answer")).toHaveLength(1);
  });
});

describe("a turn", () => {
  it("shows the question at once, streams the answer with Stop, then swaps in the stored ids", async () => {
    let emit: (e: StreamEvent) => void = () => {};
    let finish: (end: TurnEnd) => void = () => {};
    const cancel = vi.fn();
    const start = vi.spyOn(streams, "start").mockImplementation((_body, onEvent) => {
      emit = onEvent;
      const done = new Promise<TurnEnd>((resolve) => (finish = resolve));
      return { done, cancel, transport: () => "ws" } satisfies StreamingTurn;
    });
    act(() => render(<><MessageList /><Composer /></>, root));
    act(() => void send("Hello there"));
    expect(start).toHaveBeenCalledOnce();
    const body = start.mock.calls[0]![0];
    expect(body).toMatchObject({ conversation_id: null, parent_id: null, message: { content: "Hello there" } });
    expect(body.client_request_id).toMatch(/^[0-9a-f-]{36}$/);
    act(() => render(<><MessageList /><Composer /></>, root));
    expect(root.querySelector('[data-role="user"]')?.textContent).toContain("Hello there");
    expect(byRole("button", "Stop")).toHaveLength(1);

    await act(async () => {
      emit({ event: "token", data: "Hi " });
      emit({ event: "token", data: "**you**" });
      await new Promise((r) => setTimeout(r, 30));
    });
    expect(root.querySelector('[data-role="assistant"] strong')?.textContent).toBe("you");

    act(() => stop());
    expect(cancel).toHaveBeenCalledOnce();

    const conversationId = "0b6f6c7e-0000-4000-8000-00000000000c";
    await act(async () => {
      finish({
        kind: "done",
        data: { request_id: "r", conversation_id: conversationId, message_id: "a1", user_message_id: "q1", content_struct: null, usage: {}, adapters: [{ id: "persona", weight: 0.5, how: "prompt", version: 1 }], trace: {}, cancelled: true },
      });
      await new Promise((r) => setTimeout(r, 0));
    });
    expect(streaming.value).toBeNull();
    expect(activeId.value).toBe(conversationId);
    expect(path.value.map((m) => m.id)).toEqual(["q1", "a1"]);
    expect(messages.value["a1"]!.content).toBe("Hi **you**");
    expect(byRole("button", "Stop")).toHaveLength(0);
    expect(byRole("button", "Good answer")).toHaveLength(1);
    expect(root.textContent).toContain("partial answer is kept");
  });
});
