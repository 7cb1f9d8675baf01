// Settings → Your data: the export (request, polling while pending and only then, the download
// through the signed URL, the polite refusals, the mail link's export focused) and the account
// deletion dialog (what it asks for, its validation and errors, the keyboard, the sign-out).
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DataExport } from "../src/api/account";
import type { UserOut } from "../src/api/types";
import { AuthPanel } from "../src/components/auth/AuthPanel";
import { ACCOUNT_DELETED, type AccountUser } from "../src/components/settings/DeleteAccountDialog";
import { POLL_MS } from "../src/components/settings/useExports";
import { YourDataPanel } from "../src/components/settings/YourDataPanel";
import { leavePage } from "../src/lib/leavePage";
import { auth } from "../src/state/auth";
import { oidcProvider } from "../src/state/oidc";
import { fail, ok } from "./helpers";

const USER: UserOut = {
  id: "u1", email: "ada@example.test", handle: null, role: "user",
  created_at: "2026-11-01T10:00:00Z", email_verified: true, mfa_enabled: false,
};

function exportOf(id: string, status: DataExport["status"], extra: Partial<DataExport> = {}): DataExport {
  const done = status === "ready" || status === "failed" || status === "expired";
  return {
    id, status, created_at: "2026-11-28T05:00:00Z",
    finished_at: done ? "2026-11-28T05:01:00Z" : null,
    expires_at: status === "ready" ? "2026-12-05T05:01:00Z" : null,
    size_bytes: status === "ready" ? 20_480 : null, error: null, ...extra,
  };
}

type Answer = (body: unknown) => Response;
interface Recorded { key: string; body: unknown }

/** Routes by "METHOD /path"; a list of answers is used in turn (its last one from then on). */
function server(routes: Record<string, Answer | Answer[]>): Recorded[] {
  const calls: Recorded[] = [];
  vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const key = `${init.method ?? "GET"} ${new URL(String(input), "http://app.test").pathname}`;
    const body = init.body ? JSON.parse(String(init.body)) as unknown : undefined;
    calls.push({ key, body });
    const route = routes[key];
    const answer = Array.isArray(route) ? (route.length > 1 ? route.shift()! : route[0]!) : route;
    return answer ? answer(body) : fail(404, "not_found", `no ${key}`);
  }));
  return calls;
}

const count = (calls: Recorded[], key: string) => calls.filter((c) => c.key === key).length;

let root: HTMLElement;
beforeEach(() => {
  root = document.createElement("div");
  document.body.appendChild(root);
  auth.value = { status: "signed-in", user: USER };
  oidcProvider.value = null;
  window.history.replaceState(null, "", "/settings");
});
afterEach(() => {
  act(() => render(null, root));
  root.remove();
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const flush = async (ms = 0) => {
  for (let i = 0; i < 8; i++) {
    await act(async () => {
      if (vi.isFakeTimers()) await vi.advanceTimersByTimeAsync(ms / 8);
      else await new Promise((r) => setTimeout(r, 0));
    });
  }
};
const button = (name: string) =>
  [...root.querySelectorAll("button")].find((b) => (b.getAttribute("aria-label") ?? b.textContent ?? "").trim() === name) ?? null;
const buttonLike = (pattern: RegExp) =>
  [...root.querySelectorAll("button")].find((b) => pattern.test(b.getAttribute("aria-label") ?? b.textContent ?? "")) ?? null;
const click = (el: Element | null) => act(() => void (el as HTMLButtonElement).click());
const field = (label: string) =>
  [...root.querySelectorAll("label")].find((l) => l.querySelector("span")?.textContent?.trim() === label)?.querySelector("input") ?? null;
const type = (el: HTMLInputElement | null, value: string) => act(() => {
  el!.value = value;
  el!.dispatchEvent(new Event("input", { bubbles: true }));
});
const key = (el: Element, k: string, shiftKey = false) =>
  act(() => void el.dispatchEvent(new KeyboardEvent("keydown", { key: k, shiftKey, bubbles: true, cancelable: true })));
const statusText = () => [...root.querySelectorAll('[role="status"]')].map((s) => s.textContent).join(" ");
const alertText = () => [...root.querySelectorAll('[role="alert"]')].map((s) => s.textContent).join(" ");
const row = (id: string) => root.querySelector<HTMLElement>(`#export-${id}`);

async function openPanel(user: UserOut = USER) {
  act(() => render(<YourDataPanel user={user} />, root));
  await flush();
}

describe("Your data: export", () => {
  it("requests an export, polls it while queued or running, stops once ready, and downloads it", async () => {
    vi.useFakeTimers();
    const leave = vi.spyOn(leavePage, "to").mockImplementation(() => undefined);
    const calls = server({
      "GET /v1/me/exports": [
        () => ok({ items: [] }),
        () => ok({ items: [exportOf("e1", "running")] }),
        () => ok({ items: [exportOf("e1", "ready")] }),
      ],
      "POST /v1/me/export": () => ok({ export: exportOf("e1", "queued") }, 202),
      "GET /v1/me/exports/e1/download": () => ok({ url: "https://store.test/exports/e1.zip?sig=abc", expires_at: "2026-11-28T05:20:00Z" }),
    });
    await openPanel();
    expect(root.textContent).toContain("No exports yet.");
    await click(button("Export my data"));
    await flush();
    expect(count(calls, "POST /v1/me/export")).toBe(1);
    expect(row("e1")!.textContent).toContain("Queued");
    expect(button("Export my data")!.disabled).toBe(true); // one pending at a time
    expect(statusText()).toContain("Export requested");

    await flush(POLL_MS);
    expect(row("e1")!.textContent).toContain("Preparing");
    await flush(POLL_MS);
    expect(row("e1")!.textContent).toContain("Ready");
    expect(row("e1")!.textContent).toContain("20.0 KiB");
    expect(statusText()).toContain("ready to download");
    const polled = count(calls, "GET /v1/me/exports");
    await flush(POLL_MS * 5);
    expect(count(calls, "GET /v1/me/exports")).toBe(polled); // nothing pending: no more polling

    await click(buttonLike(/^Download the export of /));
    await flush();
    expect(count(calls, "GET /v1/me/exports/e1/download")).toBe(1);
    expect(leave).toHaveBeenCalledWith("https://store.test/exports/e1.zip?sig=abc");
  });

  it("stops polling when the section goes", async () => {
    vi.useFakeTimers();
    const calls = server({ "GET /v1/me/exports": () => ok({ items: [exportOf("e1", "running")] }) });
    await openPanel();
    await flush(POLL_MS * 2);
    const polled = count(calls, "GET /v1/me/exports");
    expect(polled).toBeGreaterThan(1);
    act(() => render(null, root));
    await flush(POLL_MS * 5);
    expect(count(calls, "GET /v1/me/exports")).toBe(polled);
  });

  it("says politely that an export is in progress already (409), and shows it", async () => {
    const calls = server({
      "GET /v1/me/exports": [() => ok({ items: [] }), () => ok({ items: [exportOf("e9", "queued")] })],
      "POST /v1/me/export": () => fail(409, "export_in_progress", "an export is queued or running"),
    });
    await openPanel();
    await click(button("Export my data"));
    await flush();
    expect(alertText()).toContain("An export is already being prepared");
    expect(count(calls, "GET /v1/me/exports")).toBe(2);
    expect(row("e9")!.textContent).toContain("Queued");
  });

  it("shows failed and expired exports as such, and an expired download (410) as expired", async () => {
    const leave = vi.spyOn(leavePage, "to").mockImplementation(() => undefined);
    server({
      "GET /v1/me/exports": () => ok({ items: [
        exportOf("e3", "ready"), exportOf("e2", "failed", { error: "storage unavailable" }), exportOf("e1", "expired"),
      ] }),
      "GET /v1/me/exports/e3/download": () => fail(410, "export_expired", "the export expired"),
    });
    await openPanel();
    expect(row("e2")!.textContent).toContain("Failed");
    expect(row("e2")!.textContent).toContain("storage unavailable");
    expect(row("e1")!.textContent).toContain("Expired");
    expect(row("e1")!.querySelector("button")).toBeNull();
    expect(row("e2")!.querySelector("button")).toBeNull();
    await click(row("e3")!.querySelector("button"));
    await flush();
    expect(alertText()).toContain("This export has expired");
    expect(row("e3")!.textContent).toContain("Expired");
    expect(row("e3")!.querySelector("button")).toBeNull();
    expect(leave).not.toHaveBeenCalled();
  });

  it("never leaves for an address that is not http(s)", async () => {
    const leave = vi.spyOn(leavePage, "to").mockImplementation(() => undefined);
    server({
      "GET /v1/me/exports": () => ok({ items: [exportOf("e1", "ready")] }),
      "GET /v1/me/exports/e1/download": () => ok({ url: "javascript:alert(1)", expires_at: "2026-11-28T05:20:00Z" }),
    });
    await openPanel();
    await click(row("e1")!.querySelector("button"));
    await flush();
    expect(leave).not.toHaveBeenCalled();
    expect(alertText()).toContain("not a web address");
  });

  it("focuses the export the mail links to (/settings?export=id)", async () => {
    window.history.replaceState(null, "", "/settings?export=e2");
    server({ "GET /v1/me/exports": () => ok({ items: [exportOf("e3", "ready"), exportOf("e2", "ready")] }) });
    await openPanel();
    expect(document.activeElement).toBe(row("e2"));
    expect(row("e2")!.getAttribute("aria-current")).toBe("true");
    expect(row("e3")!.getAttribute("aria-current")).toBeNull();
  });

  it("reads a linked export that is not among the last ten, and says when it is not this account's", async () => {
    window.history.replaceState(null, "", "/settings?export=old");
    const calls = server({
      "GET /v1/me/exports": () => ok({ items: [exportOf("e3", "ready")] }),
      "GET /v1/me/exports/old": () => ok({ export: exportOf("old", "expired") }),
    });
    await openPanel();
    expect(count(calls, "GET /v1/me/exports/old")).toBe(1);
    expect(document.activeElement).toBe(row("old"));

    act(() => render(null, root));
    window.history.replaceState(null, "", "/settings?export=other");
    server({ "GET /v1/me/exports": () => ok({ items: [] }) }); // /v1/me/exports/other: 404
    await openPanel();
    expect(root.textContent).toContain("The export in your link was not found for this account.");
  });
});

describe("Your data: delete the account", () => {
  async function openDialog(user: AccountUser = USER) {
    await openPanel(user);
    await click(button("Delete my account"));
    return root.querySelector<HTMLElement>('[role="dialog"]')!;
  }

  it("explains what goes and what stays, takes the focus, and gives it back on Escape", async () => {
    server({ "GET /v1/me/exports": () => ok({ items: [] }) });
    const dialog = await openDialog();
    expect(dialog.getAttribute("aria-modal")).toBe("true");
    expect(dialog.textContent).toContain("audit log keeps its entries, with your identity replaced by a pseudonym");
    expect(dialog.textContent).toContain("up to 7 days");
    expect(document.activeElement).toBe(field("Password"));
    expect(field("MFA code")).toBeNull(); // two-factor is off

    // Tab from the last control comes back to the first: the page behind is out of reach.
    const cancel = button("Cancel")!;
    cancel.focus();
    await key(cancel, "Tab");
    expect(document.activeElement).toBe(field("Password"));
    await key(field("Password")!, "Tab", true);
    expect(document.activeElement).toBe(cancel);

    await key(dialog, "Escape");
    await flush();
    expect(root.querySelector('[role="dialog"]')).toBeNull();
    expect(document.activeElement).toBe(button("Delete my account"));
  });

  it("needs DELETE typed and the password before it sends anything", async () => {
    const calls = server({ "GET /v1/me/exports": () => ok({ items: [] }) });
    await openDialog();
    const destroy = button("Delete permanently")!;
    expect(destroy.disabled).toBe(true);
    await type(field("Type DELETE to confirm"), "delete me");
    expect(destroy.disabled).toBe(true);
    await type(field("Type DELETE to confirm"), "DELETE");
    expect(destroy.disabled).toBe(false);
    await click(destroy);
    await flush();
    expect(alertText()).toContain("Enter your password.");
    expect(count(calls, "DELETE /v1/me")).toBe(0);
  });

  it("shows a wrong password and a wrong code in the dialog, and sends the code when MFA is on", async () => {
    const calls = server({
      "GET /v1/me/exports": () => ok({ items: [] }),
      "DELETE /v1/me": [
        () => fail(403, "invalid_password", "wrong password"),
        () => fail(403, "invalid_code", "wrong code"),
      ],
    });
    await openDialog({ ...USER, mfa_enabled: true });
    await type(field("Password"), "not it");
    await type(field("MFA code"), " 123 456 ");
    await type(field("Type DELETE to confirm"), "DELETE");
    await click(button("Delete permanently"));
    await flush();
    expect(alertText()).toContain("That password is not correct.");
    expect(calls.find((c) => c.key === "DELETE /v1/me")!.body).toEqual({ password: "not it", code: "123456" });
    await click(button("Delete permanently"));
    await flush();
    expect(alertText()).toContain("That code is not correct.");
    expect(auth.value.status).toBe("signed-in");
    expect(root.querySelector('[role="dialog"]')).not.toBeNull();
  });

  it("on 202 signs out here and the sign-in screen says the account is being deleted", async () => {
    const calls = server({
      "GET /v1/me/exports": () => ok({ items: [] }),
      "DELETE /v1/me": () => ok({ status: "deleting" }, 202),
      "POST /v1/auth/logout": () => fail(401, "unauthorized", "no session"), // the cookies are gone
    });
    await openDialog();
    await type(field("Password"), "correct horse battery staple");
    await type(field("Type DELETE to confirm"), "DELETE");
    await click(button("Delete permanently"));
    await flush();
    expect(calls.find((c) => c.key === "DELETE /v1/me")!.body).toEqual({ password: "correct horse battery staple" });
    expect(auth.value).toEqual({ status: "anonymous", reason: ACCOUNT_DELETED });
    expect(window.location.pathname).toBe("/");

    act(() => render(<AuthPanel />, root));
    expect(root.querySelector('[role="status"]')!.textContent).toBe("Your account is being deleted.");
  });

  it("without a password (single sign-on), sends none and asks for a fresh sign-in when one is needed", async () => {
    oidcProvider.value = { kind: "oidc", name: "corp", label: "Corp SSO" };
    const calls = server({
      "GET /v1/me/exports": () => ok({ items: [] }),
      "DELETE /v1/me": () => fail(403, "reauth_required", "sign in again"),
      "POST /v1/auth/logout": () => ok({ logged_out: true }),
    });
    const dialog = await openDialog();
    expect(dialog.textContent).toContain("If you sign in with Corp SSO and have no password, leave this empty.");
    await type(field("Type DELETE to confirm"), "DELETE");
    await click(button("Delete permanently"));
    await flush();
    expect(calls.find((c) => c.key === "DELETE /v1/me")!.body).toEqual({});
    expect(alertText()).toContain("needs a recent sign-in");
    await click(button("Sign in again"));
    await flush();
    expect(count(calls, "POST /v1/auth/logout")).toBe(1);
    expect(auth.value.status).toBe("anonymous");
    expect(auth.value.status === "anonymous" && auth.value.reason).toContain("Sign in again");
  });
  // GET /v1/me's has_password (UserOut & { has_password } until the generated schema has it).
  it("asks no password of an account without one (has_password false) and explains the fresh sign-in", async () => {
    oidcProvider.value = { kind: "oidc", name: "corp", label: "Corp SSO" };
    const calls = server({
      "GET /v1/me/exports": () => ok({ items: [] }),
      "DELETE /v1/me": () => ok({ status: "deleting" }, 202),
      "POST /v1/auth/logout": () => fail(401, "unauthorized", "no session"),
    });
    const dialog = await openDialog({ ...USER, has_password: false });
    expect(field("Password")).toBeNull();
    expect(dialog.textContent).toContain("Your account has no password (you sign in with Corp SSO)");
    expect(dialog.textContent).toContain("needs a sign-in from the last few minutes");
    expect(document.activeElement).toBe(field("Type DELETE to confirm"));
    await type(field("Type DELETE to confirm"), "DELETE");
    await click(button("Delete permanently"));
    await flush();
    expect(calls.find((c) => c.key === "DELETE /v1/me")!.body).toEqual({});
    expect(auth.value).toEqual({ status: "anonymous", reason: ACCOUNT_DELETED });
  });

  it("asks an account without a password but with MFA for its code instead", async () => {
    const calls = server({
      "GET /v1/me/exports": () => ok({ items: [] }),
      "DELETE /v1/me": () => fail(403, "invalid_code", "wrong code"),
    });
    const dialog = await openDialog({ ...USER, mfa_enabled: true, has_password: false });
    expect(field("Password")).toBeNull();
    expect(dialog.textContent).toContain("confirm with a current code from your authenticator app");
    expect(document.activeElement).toBe(field("MFA code"));
    await type(field("MFA code"), "654321");
    await type(field("Type DELETE to confirm"), "DELETE");
    await click(button("Delete permanently"));
    await flush();
    expect(calls.find((c) => c.key === "DELETE /v1/me")!.body).toEqual({ code: "654321" });
    expect(alertText()).toContain("That code is not correct.");
  });

  it("requires the password when has_password is true, even with single sign-on on", async () => {
    oidcProvider.value = { kind: "oidc", name: "corp", label: "Corp SSO" };
    const calls = server({ "GET /v1/me/exports": () => ok({ items: [] }) });
    const dialog = await openDialog({ ...USER, has_password: true });
    expect(field("Password")!.getAttribute("aria-required")).toBe("true");
    expect(dialog.textContent).not.toContain("leave this empty");
    await type(field("Type DELETE to confirm"), "DELETE");
    await click(button("Delete permanently"));
    await flush();
    expect(alertText()).toContain("Enter your password.");
    expect(count(calls, "DELETE /v1/me")).toBe(0);
  });
});
