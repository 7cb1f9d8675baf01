// OIDC login in the app: which providers the API offers, starting a login (the start route,
// then the provider's URL), the callback's outcome read from the fragment, the app coming up
// signed in after it, and the "Continue with …" button on the log-in panel.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "../src/api/client";
import { AuthPanel } from "../src/components/auth/AuthPanel";
import { auth, bootstrap } from "../src/state/auth";
import {
  loadProviders, NOT_SIGNED_IN, oidcErrorMessage, oidcProvider, returnPath, safeProviderUrl, startOidcLogin,
  takeLoginReturn,
  type LoginProvider,
} from "../src/state/oidc";
import { fail, fakeFetch, ok } from "./helpers";

const PROVIDERS: { providers: LoginProvider[] } = {
  providers: [
    { kind: "password", name: "password", label: "Password" },
    { kind: "oidc", name: "acme", label: "Acme ID" },
  ],
};
const USER = { id: "u1", email: "ada@example.com", handle: null, role: "user", created_at: "2030-01-01T00:00:00Z", email_verified: true };
const AUTHORIZE = "https://id.acme.test/authorize?client_id=c&state=s";
const noSleep = { sleep: async () => {}, random: () => 0 };

function memoryStorage(initial: Record<string, string> = {}) {
  const items = new Map(Object.entries(initial));
  return {
    items,
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
    removeItem: (k: string) => void items.delete(k),
  };
}

let root: HTMLElement;
beforeEach(() => {
  root = document.createElement("div");
  document.body.appendChild(root);
  oidcProvider.value = null;
  window.localStorage.clear();
  window.sessionStorage.clear();
  window.history.replaceState(null, "", "/");
});
afterEach(() => {
  render(null, root);
  root.remove();
  vi.unstubAllGlobals();
});

const flush = async () => {
  for (let i = 0; i < 5; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
};
const buttons = (name: string) => [...root.querySelectorAll("button")].filter((b) => b.textContent?.trim() === name);

describe("the providers the API offers", () => {
  it("keeps the OIDC provider (name and label)", async () => {
    const { fetch, calls } = fakeFetch([ok(PROVIDERS)]);
    await loadProviders(new ApiClient({ fetch, ...noSleep }));
    expect(calls[0]!.url).toBe("/v1/auth/providers");
    expect(oidcProvider.value).toEqual({ kind: "oidc", name: "acme", label: "Acme ID" });
  });

  it("has none when only passwords are configured, or when the API cannot say", async () => {
    oidcProvider.value = PROVIDERS.providers[1]!;
    let fake = fakeFetch([ok({ providers: [PROVIDERS.providers[0]] })]);
    await loadProviders(new ApiClient({ fetch: fake.fetch, ...noSleep }));
    expect(oidcProvider.value).toBeNull();
    oidcProvider.value = PROVIDERS.providers[1]!;
    fake = fakeFetch([fail(503, "unavailable"), fail(503, "unavailable")]);
    await loadProviders(new ApiClient({ fetch: fake.fetch, ...noSleep }));
    expect(oidcProvider.value).toBeNull();
  });
});

describe("starting a login", () => {
  it("POSTs the provider's start with this path, marks the tab, then goes to the provider", async () => {
    const { fetch, calls } = fakeFetch([ok({ authorization_url: AUTHORIZE, state_expires_in: 600 })]);
    const assign = vi.fn();
    const storage = memoryStorage();
    await startOidcLogin("acme", {
      client: new ApiClient({ fetch, ...noSleep }),
      location: { pathname: "/c/0b6f6c7e-0000-4000-8000-0000000000c1", search: "?x=1", assign },
      storage,
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe("/v1/auth/oauth/acme/start");
    expect(calls[0]!.init.method).toBe("POST");
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ redirect_to: "/c/0b6f6c7e-0000-4000-8000-0000000000c1?x=1" });
    expect(assign).toHaveBeenCalledWith(AUTHORIZE);
    expect(storage.items.get("adaptive.oidcPending")).toBe("1");
  });

  it("never follows a non-web URL, and passes the API's refusal on", async () => {
    const assign = vi.fn();
    let fake = fakeFetch([ok({ authorization_url: "javascript:alert(1)", state_expires_in: 600 })]);
    const location = { pathname: "/", search: "", assign };
    await expect(startOidcLogin("acme", { client: new ApiClient({ fetch: fake.fetch, ...noSleep }), location, storage: null }))
      .rejects.toThrow(/not a web address/);
    fake = fakeFetch([fail(404, "not_found", "no OAuth provider named 'acme'")]);
    await expect(startOidcLogin("acme", { client: new ApiClient({ fetch: fake.fetch, ...noSleep }), location, storage: null }))
      .rejects.toMatchObject({ code: "not_found" });
    expect(assign).not.toHaveBeenCalled();
  });

  it("asks to come back to a path the API takes, else to /", () => {
    expect(returnPath({ pathname: "/settings", search: "" })).toBe("/settings");
    expect(returnPath({ pathname: "//evil.example/x", search: "" })).toBe("/");
    expect(returnPath({ pathname: "/a\\b", search: "" })).toBe("/");
    expect(returnPath({ pathname: `/${"x".repeat(600)}`, search: "" })).toBe("/");
    expect(safeProviderUrl("http://127.0.0.1:9/authorize")).toBe("http://127.0.0.1:9/authorize");
    expect(safeProviderUrl("data:text/html,hi")).toBeNull();
    expect(safeProviderUrl("/relative")).toBeNull();
  });
});

describe("coming back from the provider", () => {
  it("reads #login=oidc once and drops it from the address bar", () => {
    window.history.replaceState(null, "", "/settings?tab=1#login=oidc");
    const storage = memoryStorage({ "adaptive.oidcPending": "1" });
    expect(takeLoginReturn(window, storage)).toEqual({ signedIn: true, pending: true });
    expect(`${window.location.pathname}${window.location.search}${window.location.hash}`).toBe("/settings?tab=1");
    expect(storage.items.size).toBe(0);
    expect(takeLoginReturn(window, storage)).toEqual({ signedIn: false, pending: false });
  });

  it("turns an error code into the app's own words (never the address bar's text)", () => {
    window.history.replaceState(null, "", "/#login_error=conflict");
    const back = takeLoginReturn(window, null);
    expect(back.signedIn).toBe(false);
    expect(back.error).toMatch(/already exists: log in with its password/);
    expect(window.location.hash).toBe("");
    expect(oidcErrorMessage("denied")).toMatch(/did not sign you in/);
    expect(oidcErrorMessage("Call 555-0100 now")).toBe(oidcErrorMessage("anything"));
    expect(oidcErrorMessage("toString")).toMatch(/failed/);
  });

  it("leaves other fragments alone", () => {
    window.history.replaceState(null, "", "/verify-email#token=abc");
    expect(takeLoginReturn(window, null)).toEqual({ signedIn: false, pending: false });
    expect(window.location.hash).toBe("#token=abc");
  });
});

describe("the app after the callback", () => {
  function api(answers: Record<string, () => Response>) {
    const seen: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
      const key = `${init.method ?? "GET"} ${new URL(String(input), "http://app.test").pathname}`;
      seen.push(key);
      const answer = answers[key];
      return answer ? answer() : fail(404, "not_found");
    }));
    return seen;
  }

  it("comes up signed in without the local flag, and sets it", async () => {
    const seen = api({
      "GET /v1/auth/providers": () => ok(PROVIDERS),
      "GET /v1/me": () => ok(USER),
      "GET /v1/auth/sessions": () => ok({ items: [] }),
    });
    window.history.replaceState(null, "", "/#login=oidc");
    await bootstrap();
    expect(auth.value).toEqual({ status: "signed-in", user: USER });
    expect(window.localStorage.getItem("adaptive.signedIn")).toBe("1");
    expect(window.location.hash).toBe("");
    expect(seen).toContain("GET /v1/me");
  });

  it("also after a login started in this tab whose fragment went missing", async () => {
    api({ "GET /v1/auth/providers": () => ok(PROVIDERS), "GET /v1/me": () => ok(USER), "GET /v1/auth/sessions": () => ok({ items: [] }) });
    window.sessionStorage.setItem("adaptive.oidcPending", "1");
    await bootstrap();
    expect(auth.value.status).toBe("signed-in");
    expect(window.sessionStorage.getItem("adaptive.oidcPending")).toBeNull();
  });

  it("shows the provider's refusal without asking for a session", async () => {
    const seen = api({ "GET /v1/auth/providers": () => ok(PROVIDERS) });
    window.history.replaceState(null, "", "/#login_error=denied");
    await bootstrap();
    expect(auth.value).toEqual({ status: "anonymous", error: oidcErrorMessage("denied") });
    expect(seen).not.toContain("GET /v1/me");
  });

  it("says so when the callback came back but no session came with it", async () => {
    api({
      "GET /v1/auth/providers": () => ok(PROVIDERS),
      "GET /v1/me": () => fail(401, "unauthorized"),
      "POST /v1/auth/refresh": () => fail(401, "unauthorized"),
    });
    window.history.replaceState(null, "", "/#login=oidc");
    await bootstrap();
    expect(auth.value).toEqual({ status: "anonymous", error: NOT_SIGNED_IN });
    expect(window.localStorage.getItem("adaptive.signedIn")).toBeNull();
  });

  it("without any hint, shows the login at once and learns the providers", async () => {
    const seen = api({ "GET /v1/auth/providers": () => ok(PROVIDERS) });
    await bootstrap();
    await flush();
    expect(auth.value).toEqual({ status: "anonymous" });
    expect(seen).toEqual(["GET /v1/auth/providers"]);
    expect(oidcProvider.value?.label).toBe("Acme ID");
  });
});

describe("the log-in panel", () => {
  it("has no provider button when none is configured", () => {
    auth.value = { status: "anonymous" };
    act(() => render(<AuthPanel />, root));
    expect(buttons("Log in")).toHaveLength(1);
    expect([...root.querySelectorAll("button")].some((b) => b.textContent?.startsWith("Continue with"))).toBe(false);
  });

  it("offers Continue with <label>, which starts the login", async () => {
    const fetch = vi.fn(async () => ok({ authorization_url: AUTHORIZE, state_expires_in: 600 }));
    vi.stubGlobal("fetch", fetch);
    oidcProvider.value = PROVIDERS.providers[1]!;
    auth.value = { status: "anonymous" };
    act(() => render(<AuthPanel />, root));
    const [button] = buttons("Continue with Acme ID");
    expect(button).toBeTruthy();
    expect(button!.getAttribute("type")).toBe("button"); // never submits the password form
    act(() => button!.click());
    await flush();
    expect(fetch).toHaveBeenCalledTimes(1);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/v1/auth/oauth/acme/start");
    expect(JSON.parse(String(init.body))).toEqual({ redirect_to: "/" });
    expect(root.querySelector('[role="alert"]')).toBeNull();
  });

  it("shows why the start failed", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => fail(503, "unavailable", "the OIDC provider did not answer its discovery document")));
    oidcProvider.value = PROVIDERS.providers[1]!;
    auth.value = { status: "anonymous" };
    act(() => render(<AuthPanel />, root));
    act(() => buttons("Continue with Acme ID")[0]!.click());
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toMatch(/discovery document/);
    expect(buttons("Continue with Acme ID")[0]!.disabled).toBe(false);
  });

  it("shows a refused OIDC login as an alert", () => {
    auth.value = { status: "anonymous", error: oidcErrorMessage("mfa_required") };
    act(() => render(<AuthPanel />, root));
    expect(root.querySelector('[role="alert"]')?.textContent).toMatch(/two-factor authentication/);
  });
});
