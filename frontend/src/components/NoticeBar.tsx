import { useState } from "preact/hooks";
import { api } from "../api/client";
import { userMessage } from "../api/envelope";
import type { UserOut } from "../api/types";
import { notice } from "../state/auth";

/** The verify-your-e-mail reminder, with a way to get the mail again. */
export function NoticeBar({ user }: { user: UserOut }) {
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [hidden, setHidden] = useState(false);
  if (hidden) return null;
  const resend = async () => {
    setBusy(true);
    try {
      await api.post("/v1/auth/verify_email/resend", { retries: 0 });
      setStatus("Sent. Check your inbox.");
    } catch (error) {
      setStatus(userMessage(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="notice-bar" role="status">
      <span>{notice.value ?? "Your e-mail address is not verified yet."}</span>
      {!user.email_verified && (
        <button type="button" class="link-button" disabled={busy} onClick={() => void resend()}>
          Mail the verification link again
        </button>
      )}
      {status && <span class="muted">{status}</span>}
      <button
        type="button"
        class="link-button"
        onClick={() => {
          notice.value = null;
          setHidden(true);
        }}
      >
        Dismiss
      </button>
    </div>
  );
}
