import { useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import { cancelMfa, verifyMfa } from "../../state/auth";
import { CodeField } from "../common/CodeField";

/** The login answered `mfa_required`: a code from the authenticator app (or a recovery code). */
export function MfaStep({ email }: { email: string }) {
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await verifyMfa(code.replace(/\s+/g, ""));
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="centered">
      <form class="card auth-card" onSubmit={(e) => void submit(e)} aria-labelledby="mfa-title">
        <h1 id="mfa-title">Two-factor authentication</h1>
        <p class="muted">Enter the code from your authenticator app for {email}, or one of your recovery codes.</p>
        <CodeField value={code} onInput={setCode} autoFocus />
        {error && <p class="error-note" role="alert">{error}</p>}
        <div class="row">
          <button type="submit" class="primary" disabled={busy}>
            Log in
          </button>
          <button type="button" onClick={cancelMfa}>
            Cancel
          </button>
        </div>
      </form>
    </main>
  );
}
