// The admin console's "Delete user": offered on every row but the admin's own, confirmed in a
// modal dialog by the user's e-mail typed out, DELETE /v1/admin/users/{id}, then the row shows
// the user as deleting and the section's live status says so; refusals stay inline. A user the
// server lists as deleting (after a reload) gets the same row: no enable, no second delete.
import { afterEach, describe, expect, it, vi } from "vitest";
import { confirms } from "../admin/deleteUser";
import { usersSection } from "../admin/users";
import { fail, ok } from "./helpers";

const flush = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 0));
};
const ADMIN = { id: "a1", email: "root@example.test", handle: null, role: "admin", created_at: "t", email_verified: true, mfa_enabled: true, is_active: true };
const EVE = { id: "u1", email: "Eve@Example.test", handle: null, role: "user", created_at: "t", email_verified: true, mfa_enabled: false, is_active: true, status: "active" };
// Being deleted: disabled, with a pending purge (as GET /v1/admin/users says after a reload).
const MALLORY = { id: "u2", email: "mallory@example.test", handle: null, role: "user", created_at: "t", email_verified: true, mfa_enabled: false, is_active: false, status: "deleting", deletion_requested_at: "2026-11-28T09:30:00Z" };
const DAVE = { ...MALLORY, id: "u3", email: "dave@example.test", status: "disabled", deletion_requested_at: null };

/** A fake API: the users page, /v1/me as the admin, and `remove` for the DELETE. */
function server(remove: () => Response, users: object[] = [ADMIN, EVE]): string[] {
  const calls: string[] = [];
  vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
    calls.push(`${init.method} ${input}`);
    if (input === "/v1/me") return ok(ADMIN);
    if (init.method === "DELETE") return remove();
    return ok({ items: users, next_cursor: null });
  }));
  return calls;
}

const buttons = (root: ParentNode, text: string) => [...root.querySelectorAll("button")].filter((b) => b.textContent === text);
const dialog = () => document.querySelector<HTMLElement>('[role="dialog"]');
const typeIn = (input: HTMLInputElement, value: string) => {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
};
const key = (el: Element, k: string, shiftKey = false) =>
  el.dispatchEvent(new KeyboardEvent("keydown", { key: k, shiftKey, bubbles: true, cancelable: true }));

let section: HTMLElement | null = null;
afterEach(() => {
  section?.remove();
  dialog()?.parentElement?.remove();
  vi.unstubAllGlobals();
});

async function open(remove: () => Response, users?: object[]) {
  const calls = server(remove, users);
  section = usersSection();
  document.body.append(section);
  await flush();
  return calls;
}

describe("admin console: delete a user", () => {
  it("compares the typed e-mail without case or surrounding spaces", () => {
    expect(confirms("  eve@example.TEST ", EVE)).toBe(true);
    expect(confirms("eve@example", EVE)).toBe(false);
  });

  it("offers no delete on the admin's own row", async () => {
    await open(() => ok({ status: "deleting" }, 202));
    expect(buttons(section!, "Delete root@example.test")).toHaveLength(0);
    expect(buttons(section!, "Delete Eve@Example.test")).toHaveLength(1);
  });

  it("asks for the e-mail in a modal dialog that keeps the keyboard, and gives the focus back on Escape", async () => {
    const calls = await open(() => ok({ status: "deleting" }, 202));
    const opener = buttons(section!, "Delete Eve@Example.test")[0]!;
    opener.click();
    const d = dialog()!;
    expect(d.getAttribute("aria-modal")).toBe("true");
    expect(document.getElementById(d.getAttribute("aria-labelledby")!)!.textContent).toBe("Delete user");
    const input = d.querySelector("input")!;
    expect(document.activeElement).toBe(input);
    const destroy = buttons(d, "Delete permanently")[0]!;
    expect(destroy.disabled).toBe(true);
    typeIn(input, "someone@example.test");
    expect(destroy.disabled).toBe(true);
    typeIn(input, "eve@example.test");
    expect(destroy.disabled).toBe(false);

    const cancel = buttons(d, "Cancel")[0]!;
    cancel.focus();
    key(cancel, "Tab");
    expect(document.activeElement).toBe(input);
    key(input, "Tab", true);
    expect(document.activeElement).toBe(cancel);

    key(d, "Escape");
    expect(dialog()).toBeNull();
    expect(document.activeElement).toBe(opener);
    expect(calls.some((c) => c.startsWith("DELETE"))).toBe(false);
  });

  it("deletes on confirmation, shows the row as deleting and announces it", async () => {
    const calls = await open(() => ok({ status: "deleting" }, 202));
    buttons(section!, "Delete Eve@Example.test")[0]!.click();
    typeIn(dialog()!.querySelector("input")!, "Eve@Example.test");
    buttons(dialog()!, "Delete permanently")[0]!.click();
    await flush();
    expect(calls.filter((c) => c.startsWith("DELETE"))).toEqual(["DELETE /v1/admin/users/u1"]);
    expect(dialog()).toBeNull();
    const row = section!.querySelector('tr[data-user="Eve@Example.test"]')!;
    expect(row.textContent).toContain("Deleting…");
    expect(row.getAttribute("data-status")).toBe("deleting");
    expect(row.querySelectorAll("button, select")).toHaveLength(0); // no enable, no second delete
    const status = section!.querySelector('[role="status"]')!;
    expect(status.textContent).toBe("Eve@Example.test is being deleted: signed out everywhere, account disabled, data purge queued.");
    expect(document.activeElement).toBe(status);
  });

  it("keeps a refusal inline in the dialog and the row as it was", async () => {
    const calls = await open(() => fail(409, "cannot_delete_self", "use DELETE /v1/me"));
    buttons(section!, "Delete Eve@Example.test")[0]!.click();
    typeIn(dialog()!.querySelector("input")!, "eve@example.test");
    buttons(dialog()!, "Delete permanently")[0]!.click();
    await flush();
    expect(calls.filter((c) => c.startsWith("DELETE"))).toHaveLength(1);
    expect(dialog()!.querySelector('[role="alert"]')!.textContent).toContain("You cannot delete your own account here");
    expect(buttons(dialog()!, "Delete permanently")[0]!.disabled).toBe(false); // can try again
    expect(section!.querySelector('tr[data-user="Eve@Example.test"]')!.textContent).toContain("active");
  });

  it("shows a user the server lists as deleting as such, with nothing to click", async () => {
    await open(() => ok({ status: "deleting" }, 202), [ADMIN, MALLORY, DAVE]);
    const row = section!.querySelector('tr[data-user="mallory@example.test"]')!;
    expect(row.getAttribute("data-status")).toBe("deleting");
    expect(row.textContent).toContain("Deleting…");
    expect(row.textContent).toContain("since 2026-11-28 09:30:00");
    expect(row.textContent).not.toContain("disabled");
    expect(row.querySelectorAll("button, select")).toHaveLength(0);
    // A disabled account (no purge) still offers Enable and Delete.
    const disabled = section!.querySelector('tr[data-user="dave@example.test"]')!;
    expect(disabled.getAttribute("data-status")).toBe("disabled");
    expect(buttons(disabled, "Enable dave@example.test")).toHaveLength(1);
    expect(buttons(disabled, "Delete dave@example.test")).toHaveLength(1);
  });
});
