import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import { navigate } from "../../state/router";

/** `/reset-password#token=…`, the link from the reset mail: a new password ends every session. */
export function ResetPassword({ token }: { token: string | null }) {
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  const [error, setError] = useState<string | null>(token ? null : "This link has no token. Request a new one from the log-in page.");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!token) return;
    setBusy(true);
    setError(null);
    try {
      await api.post("/v1/auth/complete_reset", { body: { token, new_password: password }, retries: 0 });
      setDone(true);
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="centered">
      <form class="card auth-card" onSubmit={(e) => void submit(e)} aria-labelledby="reset-title">
        <h1 id="reset-title">Choose a new password</h1>
        {done ? (
          <p class="notice" role="status">Your password is changed and every session was signed out. Log in with the new password.</p>
        ) : (
          <label class="field">
            <span>New password</span>
            <input type="password" autocomplete="new-password" required minLength={10} value={password}
              onInput={(e) => setPassword(e.currentTarget.value)} disabled={!token} />
          </label>
        )}
        {error && <p class="error-note" role="alert">{error}</p>}
        <div class="row">
          {!done && (
            <button type="submit" class="primary" disabled={busy || !token}>
              Set new password
            </button>
          )}
          <button type="button" onClick={() => navigate("/", { replace: true })}>
            Go to log in
          </button>
        </div>
      </form>
    </main>
  );
}
