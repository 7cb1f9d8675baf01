// The admin console's user list: a search made while the first page is still loading shows the
// search's answer only. The first page's answer, arriving last, is dropped (it used to be
// appended too, listing users twice).
import { afterEach, describe, expect, it, vi } from "vitest";
import { usersSection } from "../admin/users";
import { ok } from "./helpers";

const flush = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 0));
};
const user = (id: string, email: string) => ({ id, email, handle: null, role: "user", created_at: "t", email_verified: true, mfa_enabled: false, is_active: true, status: "active" });
const ADMIN = { ...user("a1", "root@example.test"), role: "admin" };
const EVE = user("u1", "eve@example.test");

let section: HTMLElement | null = null;
afterEach(() => {
  section?.remove();
  vi.unstubAllGlobals();
});

describe("admin console: find users", () => {
  it("drops the answer of a load a newer search replaced", async () => {
    let firstPage: (r: Response) => void = () => {};
    vi.stubGlobal("fetch", vi.fn(async (input: string) => {
      if (input === "/v1/me") return ok(ADMIN);
      if (input.includes("email_contains=eve")) return ok({ items: [EVE], next_cursor: null });
      return new Promise<Response>((resolve) => (firstPage = resolve)); // the slow first page
    }));
    section = usersSection();
    document.body.append(section);
    await flush();
    const search = section.querySelector<HTMLInputElement>("#user-search")!;
    search.value = "eve";
    section.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    await flush();
    firstPage(ok({ items: [ADMIN, EVE], next_cursor: "c2" }));
    await flush();
    const rows = [...section.querySelectorAll("tbody tr")].map((r) => r.querySelector("td")?.textContent);
    expect(rows).toEqual(["eve@example.test"]);
    expect(section.textContent).toContain("1 user shown.");
    // The stale page's cursor is dropped with it: the search's page was the last one.
    const more = [...section.querySelectorAll("button")].find((b) => b.textContent === "More users")!;
    expect(more.disabled).toBe(true);
  });
});
