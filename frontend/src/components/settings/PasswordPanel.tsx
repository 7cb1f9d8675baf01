// Change the password (POST /v1/auth/password/change): the other sessions end, this one stays.
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";

export const MIN_PASSWORD = 10;

export function PasswordPanel() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setStatus(null);
    setError(null);
    if (next.length < MIN_PASSWORD) {
      setError(`The new password needs ${MIN_PASSWORD} characters or more.`);
      return;
    }
    setBusy(true);
    try {
      await api.post("/v1/auth/password/change", { body: { current_password: current, new_password: next }, retries: 0 });
      setCurrent("");
      setNext("");
      setStatus("Password changed. Your other sessions were signed out.");
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel" aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <form class="stack" onSubmit={(e) => void submit(e)}>
        <label class="field">
          <span>Current password</span>
          <input type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>New password</span>
          <input type="password" autocomplete="new-password" required minLength={MIN_PASSWORD} maxLength={256} value={next}
            onInput={(e) => setNext(e.currentTarget.value)} />
        </label>
        <div class="row">
          <button type="submit" class="primary" disabled={busy}>
            Change password
          </button>
        </div>
        {status && <p class="notice" role="status">{status}</p>}
        {error && <p class="error-note" role="alert">{error}</p>}
      </form>
    </section>
  );
}
