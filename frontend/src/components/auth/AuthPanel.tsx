// Log in or sign up (one form, two submit buttons), "Continue with <provider>" when OIDC is
// configured, the MFA code step, and the request for a password-reset mail.
import { useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import { auth, logIn, signUp } from "../../state/auth";
import { ForgotPassword } from "./ForgotPassword";
import { MfaStep } from "./MfaStep";
import { OidcButton } from "./OidcButton";

export function AuthPanel() {
  const state = auth.value;
  const [email, setEmail] = useState(state.status === "mfa" ? state.email : "");
  const [password, setPassword] = useState("");
  // An OIDC login that came back refused shows why, like a failed password login.
  const [error, setError] = useState<string | null>(state.status === "anonymous" ? (state.error ?? null) : null);
  const [busy, setBusy] = useState(false);
  const [forgot, setForgot] = useState(false);

  if (state.status === "mfa") return <MfaStep email={state.email} />;
  if (forgot) return <ForgotPassword initialEmail={email} onBack={() => setForgot(false)} />;

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const action = (e.submitter as HTMLButtonElement | null)?.value === "signup" ? signUp : logIn;
    setBusy(true);
    setError(null);
    try {
      await action(email.trim(), password);
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  const reason = state.status === "anonymous" ? state.reason : undefined;

  return (
    <main class="centered">
      <form class="card auth-card" onSubmit={(e) => void submit(e)} aria-labelledby="auth-title">
        <h1 id="auth-title">Adaptive Chat</h1>
        <p class="muted">Log in, or sign up with an e-mail address and a password (10 characters or more).</p>
        {reason && <p class="notice" role="status">{reason}</p>}
        <label class="field">
          <span>Email</span>
          <input type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && <p class="error-note" role="alert">{error}</p>}
        <div class="row">
          <button type="submit" class="primary" value="login" disabled={busy}>
            Log in
          </button>
          <button type="submit" value="signup" disabled={busy}>
            Sign up
          </button>
        </div>
        <OidcButton disabled={busy} />
        <button type="button" class="link-button" onClick={() => setForgot(true)}>
          Forgot your password?
        </button>
      </form>
    </main>
  );
}
