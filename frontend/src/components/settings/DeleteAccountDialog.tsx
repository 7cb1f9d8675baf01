// "Delete my account", confirmed in a modal dialog of the page (no native confirm()): what goes,
// what stays and why, the password (and an MFA code when two-factor is on), and DELETE typed
// out, because nothing brings the account back. DELETE /v1/me answers 202 with every session
// ended and the cookies cleared; the app then signs out locally and says so on the sign-in
// screen. Accounts without a password (single sign-on) prove themselves with a recent sign-in
// or their MFA code. GET /v1/me says whether the account has a password (`has_password`); an
// older server leaves it out, and then the field shows, required unless single sign-on is on.
import { useEffect, useRef, useState } from "preact/hooks";
import { deleteAccount, type DeleteAccountIn } from "../../api/account";
import { ApiError, userMessage } from "../../api/envelope";
import type { UserOut } from "../../api/types";
import { focusables, trapTab } from "../../lib/focusTrap";
import { normalizeCode } from "../../lib/mfa";
import { auth, logOut } from "../../state/auth";
import { oidcProvider } from "../../state/oidc";
import { CodeField } from "../common/CodeField";

export const CONFIRM_WORD = "DELETE";
export const ACCOUNT_DELETED = "Your account is being deleted.";
/** The signed-in user as GET /v1/me gives it. `has_password` is declared here too, so that this
 *  compiles against a generated schema.d.ts from before the field (the intersection is a no-op
 *  once the schema has it). */
export type AccountUser = UserOut & { has_password?: boolean | null };

const SIGN_IN_AGAIN = "Sign in again, then open Settings → Your data to delete your account.";

const INLINE: Record<string, string> = {
  invalid_password: "That password is not correct.",
  invalid_code: "That code is not correct. Use a current code from your authenticator app, or a recovery code.",
  reauth_required: "For your safety, deleting an account without a password needs a recent sign-in. Sign in again, then come back here.",
};

/** Signs out here and shows the sign-in screen with `reason` (after the server ended the session). */
async function signOutWith(reason: string): Promise<void> {
  await logOut(); // the server's answer cleared the cookies already: this clears the app's state
  auth.value = { status: "anonymous", reason };
}

function errorText(error: unknown, sentPassword: boolean): string {
  if (error instanceof ApiError) {
    if (error.code in INLINE) return INLINE[error.code]!;
    if (error.code === "validation_error" && !sentPassword) return "Enter your password: this account has one.";
  }
  return userMessage(error);
}

export function DeleteAccountDialog({ user, onClose }: { user: AccountUser; onClose: () => void }) {
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [reauth, setReauth] = useState(false);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const dialog = useRef<HTMLDivElement>(null);
  const firstField = useRef<HTMLInputElement>(null);
  const mfa = user.mfa_enabled === true;
  const sso = oidcProvider.value;
  // The server's word when it gives one; otherwise: without single sign-on every account has a
  // password, with it an account may have none (the field shows, optional).
  const known = typeof user.has_password === "boolean";
  const askPassword = user.has_password !== false;
  const passwordRequired = known ? user.has_password === true : !sso;

  useEffect(() => {
    // The password when it is asked for; otherwise the first field (the MFA code, or the word).
    const first = firstField.current ?? (dialog.current && focusables(dialog.current).find((el) => el instanceof HTMLInputElement));
    first?.focus();
  }, []);

  const confirmed = typed.trim() === CONFIRM_WORD;
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!confirmed || busy) return;
    setError(null);
    setReauth(false);
    // Checked here, not by the browser's `required` bubble: the reason shows in the dialog's
    // own alert, like the server's refusals.
    if (passwordRequired && password === "") {
      setError("Enter your password.");
      firstField.current?.focus();
      return;
    }
    const body: DeleteAccountIn = {};
    if (askPassword && password !== "") body.password = password;
    if (mfa) body.code = normalizeCode(code);
    setBusy(true);
    try {
      await deleteAccount(body);
      setDone(true);
      await signOutWith(ACCOUNT_DELETED);
    } catch (err) {
      setError(errorText(err, body.password !== undefined));
      setReauth(err instanceof ApiError && err.code === "reauth_required");
      setBusy(false);
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Escape" && !busy) {
      e.stopPropagation();
      onClose();
    } else if (dialog.current) {
      trapTab(e, dialog.current);
    }
  };

  return (
    <div class="modal-backdrop">
      <div ref={dialog} class="modal card" role="dialog" aria-modal="true" aria-labelledby="delete-account-title"
        aria-describedby="delete-account-what" onKeyDown={onKeyDown}>
        <h2 id="delete-account-title">Delete your account</h2>
        <div id="delete-account-what" class="small">
          <p>
            This deletes your account ({user.email}) and everything in it: your conversations and messages, uploaded files
            and contexts, preferences and settings, personal adapters, artifacts, data exports and voice recordings. Every
            session is signed out at once. It cannot be undone: export your data first if you want a copy.
          </p>
          <p>What is kept, and why:</p>
          <ul>
            <li>The security audit log keeps its entries, with your identity replaced by a pseudonym.</li>
            <li>Backups of the database keep their copy for up to 7 days, until they are replaced.</li>
            <li>Shared skills trained earlier with your consent stay, but your events are left out of the next training.</li>
          </ul>
        </div>
        <form class="stack" onSubmit={(e) => void submit(e)}>
          {askPassword && (
            <label class="field">
              <span>Password</span>
              <input ref={firstField} type="password" autocomplete="current-password" aria-required={passwordRequired}
                value={password} aria-describedby={!known && sso ? "delete-account-sso" : undefined}
                onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
          )}
          {!askPassword && (
            <p id="delete-account-no-password" class="muted small">
              {mfa
                ? "Your account has no password: confirm with a current code from your authenticator app (or a recovery code) instead."
                : `Your account has no password${sso ? ` (you sign in with ${sso.label})` : ""}: deleting it needs a sign-in from the last few minutes. If yours is older, you will be asked to sign in again first.`}
            </p>
          )}
          {!known && sso && (
            <p id="delete-account-sso" class="muted small">
              If you sign in with {sso.label} and have no password, leave this empty. You may then be asked to sign in again
              first: deleting needs a sign-in from the last few minutes.
            </p>
          )}
          {mfa && <CodeField value={code} onInput={setCode} />}
          <label class="field">
            <span>Type {CONFIRM_WORD} to confirm</span>
            <input autocomplete="off" autocapitalize="characters" spellcheck={false} value={typed}
              onInput={(e) => setTyped(e.currentTarget.value)} />
          </label>
          {error && (
            <div class="error-note" role="alert">
              <span>{error}</span>
              {reauth && (
                <button type="button" class="link-button" onClick={() => void signOutWith(SIGN_IN_AGAIN)}>
                  Sign in again
                </button>
              )}
            </div>
          )}
          <p class={done ? "notice" : "visually-hidden"} role="status" aria-live="polite">
            {done ? ACCOUNT_DELETED : busy ? "Deleting your account…" : ""}
          </p>
          <div class="row">
            <button type="submit" class="danger" disabled={!confirmed || busy}>
              Delete permanently
            </button>
            <button type="button" disabled={busy} onClick={onClose}>
              Cancel
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
