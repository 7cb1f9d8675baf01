// Who is signed in. Cookie mode only: the tokens live in HttpOnly cookies the page never sees;
// the session id (for the WebSocket's auth frame) is kept in memory only. A local hint
// ("probably signed in") spares a first visit a 401: it is no credential.
import { signal } from "@preact/signals";
import { api } from "../api/client";
import { ApiError, userMessage } from "../api/envelope";
import type { Tokens, UserOut } from "../api/types";
import { loadProviders, NOT_SIGNED_IN, takeLoginReturn } from "./oidc";
import { navigate } from "./router";

export type AuthState =
  | { status: "loading" }
  | { status: "anonymous"; reason?: string; error?: string }
  | { status: "mfa"; ticket: string; email: string }
  | { status: "signed-in"; user: UserOut };

export const auth = signal<AuthState>({ status: "loading" });
export const sessionId = signal<string | null>(null);
/** A notice shown above the app once signed in (the verify-your-e-mail reminder). */
export const notice = signal<string | null>(null);

const HINT = "adaptive.signedIn";
const signOutListeners = new Set<() => void>();

export function onSignOut(fn: () => void): () => void {
  signOutListeners.add(fn);
  return () => signOutListeners.delete(fn);
}

function setHint(on: boolean): void {
  try {
    if (on) window.localStorage.setItem(HINT, "1");
    else window.localStorage.removeItem(HINT);
  } catch {
    // no storage: every visit asks the server
  }
}

function hinted(): boolean {
  try {
    return window.localStorage.getItem(HINT) === "1";
  } catch {
    return true;
  }
}

function signedOut(reason?: string): void {
  setHint(false);
  sessionId.value = null;
  notice.value = null;
  for (const fn of signOutListeners) fn();
  auth.value = reason ? { status: "anonymous", reason } : { status: "anonymous" };
}

api.onSessionEnded = () => {
  if (auth.value.status === "signed-in") signedOut("Your session ended. Please log in again.");
};

async function enter(tokens: Tokens): Promise<void> {
  sessionId.value = tokens.session_id ?? null;
  setHint(true);
  const user = tokens.user ?? (await api.get("/v1/me"));
  auth.value = { status: "signed-in", user };
}

/** Finds the current session's id (after a reload) for the socket's auth frame. */
async function learnSessionId(): Promise<void> {
  try {
    const list = await api.get("/v1/auth/sessions");
    sessionId.value = list.items.find((s) => s.current)?.id ?? null;
  } catch {
    // the socket then authenticates with the cookie alone
  }
}

export async function bootstrap(): Promise<void> {
  void loadProviders();
  // Back from an OIDC login: the callback's fragment says how it went (read once).
  const back = takeLoginReturn();
  const failed = back.error ? { error: back.error } : {};
  if (!hinted() && (back.error || !(back.signedIn || back.pending))) {
    auth.value = { status: "anonymous", ...failed };
    return;
  }
  try {
    const user = await api.get("/v1/me");
    setHint(true);
    auth.value = { status: "signed-in", user };
    void learnSessionId();
  } catch (error) {
    const unauthorized = error instanceof ApiError && error.status === 401;
    if (unauthorized) setHint(false);
    const lost = back.signedIn ? { error: NOT_SIGNED_IN } : failed;
    auth.value = unauthorized
      ? { status: "anonymous", ...lost }
      : { status: "anonymous", reason: `Could not check your session: ${userMessage(error)}`, ...failed };
  }
}

export async function logIn(email: string, password: string): Promise<void> {
  try {
    const tokens = await api.post("/v1/auth/login", { body: { email, password, use_cookies: true }, retries: 0 });
    await enter(tokens);
  } catch (error) {
    if (error instanceof ApiError && error.code === "mfa_required") {
      const details = (error.details ?? {}) as { mfa_ticket?: unknown };
      if (typeof details.mfa_ticket === "string") {
        auth.value = { status: "mfa", ticket: details.mfa_ticket, email };
        return;
      }
    }
    throw error;
  }
}

export async function verifyMfa(code: string): Promise<void> {
  const state = auth.value;
  if (state.status !== "mfa") return;
  const result = await api.post("/v1/auth/mfa/verify", { body: { mfa_ticket: state.ticket, code }, retries: 0 });
  if ("expires_in" in result) await enter(result);
  else throw new Error("Unexpected answer to the MFA code.");
}

export function cancelMfa(): void {
  auth.value = { status: "anonymous" };
}

export async function signUp(email: string, password: string): Promise<void> {
  const tokens = await api.post("/v1/auth/signup", { body: { email, password, use_cookies: true }, retries: 0 });
  await enter(tokens);
  notice.value = `Check your e-mail (${email}) for a link to verify your address.`;
}

export async function logOut(): Promise<void> {
  try {
    await api.post("/v1/auth/logout", { retries: 0 });
  } catch {
    // The cookies may be gone already; the local state is cleared either way.
  }
  signedOut();
  // The next login starts in the chat, not on the page (or conversation) left behind.
  navigate("/", { replace: true });
}

/** The current user again (after verifying the e-mail, say). */
export async function reloadUser(): Promise<void> {
  if (auth.value.status !== "signed-in") return;
  const user = await api.get("/v1/me");
  auth.value = { status: "signed-in", user };
}
