import { useEffect, useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import { reloadUser } from "../../state/auth";
import { navigate } from "../../state/router";

/** `/verify-email#token=…`, the link from the verification mail. */
export function VerifyEmail({ token }: { token: string | null }) {
  const [state, setState] = useState<{ kind: "working" | "ok" | "error"; text: string }>(
    token ? { kind: "working", text: "Verifying your e-mail address…" } : { kind: "error", text: "This link has no token. Open the link from the mail again." },
  );
  useEffect(() => {
    if (!token) return;
    api
      .post("/v1/auth/verify_email", { body: { token }, retries: 0 })
      .then(() => {
        setState({ kind: "ok", text: "Your e-mail address is verified." });
        void reloadUser().catch(() => {});
      })
      .catch((e: unknown) => setState({ kind: "error", text: userMessage(e) }));
  }, [token]);
  return (
    <main class="centered">
      <section class="card auth-card" aria-labelledby="verify-title">
        <h1 id="verify-title">E-mail verification</h1>
        <p class={state.kind === "error" ? "error-note" : "notice"} role={state.kind === "error" ? "alert" : "status"}>
          {state.text}
        </p>
        <button type="button" class="primary" onClick={() => navigate("/", { replace: true })}>
          Continue to Adaptive Chat
        </button>
      </section>
    </main>
  );
}
