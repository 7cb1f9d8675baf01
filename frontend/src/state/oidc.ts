// OIDC login from the web app. `GET /v1/auth/providers` says whether a provider is configured
// (its name and label); "Continue with <label>" POSTs its start route (which sets the state
// cookie) and sends the browser to the provider. The provider sends the browser to the API's
// callback, which opens a cookie session and redirects to the app with the outcome in the
// fragment: `<path>#login=oidc`, or `/#login_error=<code>`. The app reads that once, at start,
// and drops it from the address bar. A per-tab "login pending" mark, set before leaving for
// the provider, also makes the app ask for the session if a fragment went missing.
import { signal } from "@preact/signals";
import { api, type ApiClient } from "../api/client";
import type { components } from "../api/schema";

export type LoginProvider = components["schemas"]["LoginProviderOut"];

/** The OIDC provider to offer, or null (none configured, or not known yet). */
export const oidcProvider = signal<LoginProvider | null>(null);

const PENDING = "adaptive.oidcPending";
const MAX_REDIRECT = 512;

/** Asks the API which login methods exist; without an answer, only the password form shows. */
export async function loadProviders(client: ApiClient = api): Promise<void> {
  try {
    const answer = await client.get("/v1/auth/providers", { retries: 1 });
    oidcProvider.value = answer.providers.find((p) => p.kind === "oidc") ?? null;
  } catch {
    oidcProvider.value = null;
  }
}

/** Where the callback should bring the browser back: this app path, if the API will take it. */
export function returnPath(location: Pick<Location, "pathname" | "search">): string {
  const path = `${location.pathname}${location.search}`;
  // The API takes a path of this site only (no "//host", backslash or control character).
  const unsafe = !path.startsWith("/") || path.startsWith("//") || /[\\\u0000-\u001f\u007f]/.test(path);
  return unsafe || path.length > MAX_REDIRECT ? "/" : path;
}

export interface StartDeps {
  client?: ApiClient;
  location?: Pick<Location, "pathname" | "search" | "assign">;
  storage?: Pick<Storage, "setItem"> | null;
}

/** Starts the provider's login and leaves the page for it (the promise settles only on error). */
export async function startOidcLogin(provider: string, deps: StartDeps = {}): Promise<void> {
  const client = deps.client ?? api;
  const location = deps.location ?? window.location;
  const started = await client.post("/v1/auth/oauth/{provider}/start", {
    path: { provider },
    body: { redirect_to: returnPath(location) },
    retries: 0,
  });
  const url = safeProviderUrl(started.authorization_url);
  if (!url) throw new Error("The sign-in provider's address is not a web address.");
  try {
    (deps.storage === undefined ? window.sessionStorage : deps.storage)?.setItem(PENDING, "1");
  } catch {
    // no storage: the callback's fragment says it all the same
  }
  location.assign(url);
}

/** An http(s) URL, or null: never a `javascript:` or `data:` address. */
export function safeProviderUrl(raw: string): string | null {
  try {
    const url = new URL(raw);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

const ERRORS: Record<string, string> = {
  denied: "The sign-in provider did not sign you in (it was refused or cancelled). Try again, or log in with your password.",
  unauthorized: "The sign-in with your provider could not be completed: it expired, was used already, or was started in another browser. Try again.",
  mfa_required: "This account uses two-factor authentication: log in with its password and a code.",
  conflict: "An account with this e-mail address already exists: log in with its password.",
  unavailable: "The sign-in provider cannot be reached right now. Try again in a moment.",
  rate_limited: "Too many sign-in attempts. Wait a minute, then try again.",
};
const FAILED = "The sign-in with your provider failed. Try again, or log in with your password.";
export const NOT_SIGNED_IN = "The sign-in with your provider did not open a session here. Try again.";

/** The words for a callback's error code (the code only comes from the address bar). */
export function oidcErrorMessage(code: string): string {
  return Object.hasOwn(ERRORS, code) ? ERRORS[code]! : FAILED;
}

export interface LoginReturn {
  /** The callback says the login worked (the session cookies came with it). */
  signedIn: boolean;
  /** A login was started in this tab: worth asking for the session even without a fragment. */
  pending: boolean;
  /** What went wrong, in the app's words. */
  error?: string;
}

/** Reads the callback's outcome (once): removes the fragment and the pending mark. */
export function takeLoginReturn(
  win: Pick<Window, "location" | "history"> = window,
  storage: Pick<Storage, "getItem" | "removeItem"> | null = sessionStorageOrNull(),
): LoginReturn {
  let pending = false;
  try {
    pending = storage?.getItem(PENDING) === "1";
    storage?.removeItem(PENDING);
  } catch {
    // no storage
  }
  const params = new URLSearchParams(win.location.hash.replace(/^#/, ""));
  const signedIn = params.get("login") === "oidc";
  const code = params.get("login_error");
  if (signedIn || code !== null) {
    win.history.replaceState(win.history.state, "", `${win.location.pathname}${win.location.search}`);
  }
  return code !== null ? { signedIn: false, pending, error: oidcErrorMessage(code) } : { signedIn, pending };
}

function sessionStorageOrNull(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}
