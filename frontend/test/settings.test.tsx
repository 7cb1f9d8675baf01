// Settings: MFA enrolment (QR as an image, never markup), the recovery codes once, disabling
// with a code; the password change; the MFA helpers.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MfaPanel } from "../src/components/settings/MfaPanel";
import { PasswordPanel } from "../src/components/settings/PasswordPanel";
import { copyText, normalizeCode, recoveryText, svgDataUrl } from "../src/lib/mfa";
import { auth } from "../src/state/auth";
import { fail, ok } from "./helpers";

const SVG = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>';
const CODES = Array.from({ length: 10 }, (_, i) => `code-${i}`);

let root: HTMLElement;
beforeEach(() => {
  root = document.createElement("div");
  document.body.appendChild(root);
});
afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
});

const flush = async () => {
  for (let i = 0; i < 5; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
};
const button = (name: string) => [...root.querySelectorAll("button")].find((b) => b.textContent?.trim() === name);
const input = (label: string) =>
  [...root.querySelectorAll("label")].find((l) => l.querySelector("span")?.textContent?.trim() === label)?.querySelector("input") ?? null;
const type = (el: HTMLInputElement, value: string) => act(() => {
  el.value = value;
  el.dispatchEvent(new Event("input", { bubbles: true }));
});
const submit = (el: HTMLElement) => act(() => {
  el.closest("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
});

function routes(answers: Record<string, (body: unknown) => Response>) {
  const calls: { key: string; body: unknown }[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const key = `${init.method ?? "GET"} ${new URL(String(input), "http://app.test").pathname}`;
    const body = init.body ? JSON.parse(String(init.body)) as unknown : undefined;
    calls.push({ key, body });
    const answer = answers[key];
    return answer ? answer(body) : fail(404, "not_found", `no ${key}`);
  });
  vi.stubGlobal("fetch", fetch);
  return calls;
}

describe("MFA helpers", () => {
  it("turns the SVG into a data: URL and refuses anything else", () => {
    const url = svgDataUrl(SVG)!;
    expect(url.startsWith("data:image/svg+xml;charset=utf-8,")).toBe(true);
    expect(decodeURIComponent(url.split(",")[1]!)).toBe(SVG);
    expect(svgDataUrl("<svg viewBox='0 0 1 1'></svg>")).toMatch(/^data:image\/svg\+xml/);
    expect(svgDataUrl("data:image/svg+xml;base64,PHN2Zz4=")).toBe("data:image/svg+xml;base64,PHN2Zz4=");
    for (const bad of ["", null, "<img src=x onerror=alert(1)>", "javascript:alert(1)", "<html><svg></svg></html>", "data:text/html,<svg>"]) {
      expect(svgDataUrl(bad)).toBeNull();
    }
  });

  it("normalizes codes and formats the recovery codes", () => {
    expect(normalizeCode(" 123 456\n")).toBe("123456");
    expect(recoveryText(["a", "b"])).toBe("a\nb\n");
  });

  it("copies with the Clipboard API", async () => {
    const writeText = vi.fn(async () => undefined);
    vi.stubGlobal("navigator", { clipboard: { writeText } });
    expect(await copyText("x\ny")).toBe(true);
    expect(writeText).toHaveBeenCalledWith("x\ny");
  });
});

describe("MfaPanel", () => {
  it("enrols: QR as an image, the secret, a code, then the ten recovery codes once", async () => {
    auth.value = { status: "anonymous" }; // reloadUser does nothing outside a session
    const calls = routes({
      "POST /v1/auth/mfa/enable": () => ok({ secret: "JBSWY3DPEHPK3PXP", otpauth_uri: "otpauth://totp/x", qr_svg: SVG, qr_png: "iVBOR" }),
      "POST /v1/auth/mfa/verify": () => ok({ mfa_enabled: true, recovery_codes: CODES }),
    });
    const writeText = vi.fn(async () => undefined);
    vi.stubGlobal("navigator", { clipboard: { writeText } });
    act(() => render(<MfaPanel enabled={false} />, root));
    expect(root.textContent).toContain("Off");
    expect(button("Disable MFA")).toBeUndefined();
    act(() => button("Enable MFA")!.click());
    await flush();
    const img = root.querySelector("img.qr") as HTMLImageElement;
    expect(img.getAttribute("src")).toMatch(/^data:image\/svg\+xml;charset=utf-8,/);
    expect(img.alt).toBe("QR code for your authenticator app");
    expect(root.querySelector("svg")).toBeNull(); // never as markup in the page
    expect(root.textContent).toContain("JBSWY3DPEHPK3PXP");

    type(input("MFA code")!, "123 456");
    submit(button("Confirm")!);
    await flush();
    expect(calls.map((c) => c.key)).toEqual(["POST /v1/auth/mfa/enable", "POST /v1/auth/mfa/verify"]);
    expect(calls[1]!.body).toEqual({ code: "123456" });
    expect([...root.querySelectorAll(".recovery-codes li")].map((li) => li.textContent)).toEqual(CODES);
    await act(async () => button("Copy")!.click());
    await flush();
    expect(writeText).toHaveBeenCalledWith(`${CODES.join("\n")}\n`);
    expect(root.textContent).toContain("Copied.");

    act(() => button("Done")!.click());
    expect(root.querySelector(".recovery-codes")).toBeNull();
    expect(root.textContent).toContain("On:");
    expect(button("Disable MFA")).toBeTruthy();
    expect(button("Enable MFA")).toBeUndefined();
  });

  it("shows a wrong code's error and stays on the enrolment", async () => {
    routes({
      "POST /v1/auth/mfa/enable": () => ok({ secret: "S", otpauth_uri: "u", qr_svg: "<b>not an svg</b>", qr_png: "p" }),
      "POST /v1/auth/mfa/verify": () => fail(401, "unauthorized", "That code is not right."),
    });
    act(() => render(<MfaPanel enabled={false} />, root));
    act(() => button("Enable MFA")!.click());
    await flush();
    expect(root.querySelector("img")).toBeNull(); // not an SVG: no image at all
    type(input("MFA code")!, "000000");
    submit(button("Confirm")!);
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("That code is not right.");
    expect(input("MFA code")).toBeTruthy();
  });

  it("disables with a code", async () => {
    auth.value = { status: "anonymous" };
    const calls = routes({ "POST /v1/auth/mfa/disable": () => ok({ disabled: true }) });
    act(() => render(<MfaPanel enabled={true} />, root));
    act(() => button("Disable MFA")!.click());
    type(input("MFA code")!, "654321");
    submit(button("Turn off MFA")!);
    await flush();
    expect(calls).toEqual([{ key: "POST /v1/auth/mfa/disable", body: { code: "654321" } }]);
    expect(button("Enable MFA")).toBeTruthy();
  });
});

describe("PasswordPanel", () => {
  it("checks the length first, then changes the password", async () => {
    const calls = routes({ "POST /v1/auth/password/change": () => ok({ accepted: true, message: "password changed" }) });
    act(() => render(<PasswordPanel />, root));
    type(input("Current password")!, "old password here");
    type(input("New password")!, "short");
    submit(button("Change password")!);
    await flush();
    expect(calls).toEqual([]);
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("10 characters");

    type(input("New password")!, "a much longer new password");
    submit(button("Change password")!);
    await flush();
    expect(calls).toEqual([{ key: "POST /v1/auth/password/change", body: { current_password: "old password here", new_password: "a much longer new password" } }]);
    expect(root.querySelector('[role="status"]')?.textContent).toContain("other sessions were signed out");
    expect(input("New password")!.value).toBe("");
  });

  it("shows the server's refusal", async () => {
    routes({ "POST /v1/auth/password/change": () => fail(401, "unauthorized", "The current password is wrong.") });
    act(() => render(<PasswordPanel />, root));
    type(input("Current password")!, "wrong one");
    type(input("New password")!, "a much longer new password");
    submit(button("Change password")!);
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("The current password is wrong.");
  });
});
