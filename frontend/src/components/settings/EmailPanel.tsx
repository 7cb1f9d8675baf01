// The account's e-mail address and, while it is not verified, a way to get the link again
// (POST /v1/auth/verify_email/resend).
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { UserOut } from "../../api/types";

export function EmailPanel({ user }: { user: UserOut }) {
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const resend = async () => {
    setBusy(true);
    setStatus(null);
    try {
      const out = await api.post("/v1/auth/verify_email/resend", { retries: 0 });
      setStatus(out.message ? `Sent: ${out.message}` : "Sent. Check your inbox.");
    } catch (error) {
      setStatus(userMessage(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel" aria-labelledby="email-title">
      <h2 id="email-title">E-mail address</h2>
      <p>
        {user.email} <strong>{user.email_verified ? "(verified)" : "(not verified)"}</strong>
      </p>
      {!user.email_verified && (
        <div class="row">
          <button type="button" disabled={busy} onClick={() => void resend()}>
            Mail me a new verification link
          </button>
        </div>
      )}
      {status && <p class="muted small" role="status">{status}</p>}
    </section>
  );
}
