import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";

export function ForgotPassword({ initialEmail, onBack }: { initialEmail: string; onBack: () => void }) {
  const [email, setEmail] = useState(initialEmail);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await api.post("/v1/auth/request_reset", { body: { email: email.trim() }, retries: 0 });
      setStatus(answer.message || "If an account uses that address, a reset link is on its way.");
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="centered">
      <form class="card auth-card" onSubmit={(e) => void submit(e)} aria-labelledby="forgot-title">
        <h1 id="forgot-title">Reset your password</h1>
        <p class="muted">We will e-mail you a link that is valid for 15 minutes.</p>
        <label class="field">
          <span>Email</span>
          <input type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        {status && <p class="notice" role="status">{status}</p>}
        {error && <p class="error-note" role="alert">{error}</p>}
        <div class="row">
          <button type="submit" class="primary" disabled={busy}>
            Send reset link
          </button>
          <button type="button" onClick={onBack}>
            Back to log in
          </button>
        </div>
      </form>
    </main>
  );
}
