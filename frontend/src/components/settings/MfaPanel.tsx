// Two-factor authentication: enrol (QR code and secret, then a first code), the recovery codes
// shown once, and turning it off with a current code.
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { components } from "../../api/schema";
import { copyText, normalizeCode, recoveryText, svgDataUrl } from "../../lib/mfa";
import { reloadUser } from "../../state/auth";
import { CodeField } from "../common/CodeField";

type Enrollment = components["schemas"]["Enrollment"];
type Phase =
  | { name: "idle" }
  | { name: "enrolling"; enrollment: Enrollment }
  | { name: "codes"; codes: string[] }
  | { name: "disabling" };

function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => setCopied((await copyText(recoveryText(codes))) ? "Copied." : "Could not copy: select the codes and copy them.");
  return (
    <div class="recovery" role="region" aria-labelledby="recovery-title">
      <h3 id="recovery-title">Recovery codes</h3>
      <p class="small">
        Two-factor authentication is on. Keep these codes somewhere safe: each logs you in once without your
        authenticator app. They are shown only now.
      </p>
      <ol class="recovery-codes monospace" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>{c}</li>
        ))}
      </ol>
      <div class="row">
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
        <button type="button" class="primary" onClick={onDone}>
          Done
        </button>
        {copied && <span class="muted small" role="status">{copied}</span>}
      </div>
    </div>
  );
}

export function MfaPanel({ enabled: initiallyEnabled }: { enabled: boolean | null | undefined }) {
  const [enabled, setEnabled] = useState(initiallyEnabled === true);
  const [phase, setPhase] = useState<Phase>({ name: "idle" });
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(userMessage(e));
    } finally {
      setBusy(false);
    }
  };
  const start = () =>
    run(async () => {
      const enrollment = await api.post("/v1/auth/mfa/enable", { retries: 0 });
      setCode("");
      setPhase({ name: "enrolling", enrollment });
    });
  const confirm = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const out = await api.post("/v1/auth/mfa/verify", { body: { code: normalizeCode(code) }, retries: 0 });
      if (!("recovery_codes" in out)) throw new Error("Unexpected answer to the MFA code.");
      setEnabled(true);
      setCode("");
      setPhase({ name: "codes", codes: out.recovery_codes });
    });
  };
  const disable = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await api.post("/v1/auth/mfa/disable", { body: { code: normalizeCode(code) }, retries: 0 });
      setEnabled(false);
      setCode("");
      setPhase({ name: "idle" });
      await reloadUser();
    });
  };
  const cancel = () => {
    setCode("");
    setError(null);
    setPhase({ name: "idle" });
  };
  const done = () => {
    setPhase({ name: "idle" });
    void reloadUser().catch(() => undefined);
  };

  let body;
  if (phase.name === "enrolling") {
    const qr = svgDataUrl(phase.enrollment.qr_svg);
    body = (
      <form class="stack" onSubmit={confirm}>
        <p class="small">Scan the code with an authenticator app, or type the secret into it. Then enter the code it shows.</p>
        {qr && <img class="qr" src={qr} alt="QR code for your authenticator app" width={192} height={192} />}
        <p class="small">
          Secret: <code class="monospace mfa-secret">{phase.enrollment.secret}</code>
        </p>
        <CodeField value={code} onInput={setCode} />
        <div class="row">
          <button type="submit" class="primary" disabled={busy}>
            Confirm
          </button>
          <button type="button" onClick={cancel}>
            Cancel
          </button>
        </div>
      </form>
    );
  } else if (phase.name === "codes") {
    body = <RecoveryCodes codes={phase.codes} onDone={done} />;
  } else if (phase.name === "disabling") {
    body = (
      <form class="stack" onSubmit={disable}>
        <p class="small">Enter a code from your authenticator app (or a recovery code) to turn two-factor authentication off.</p>
        <CodeField value={code} onInput={setCode} />
        <div class="row">
          <button type="submit" class="danger" disabled={busy}>
            Turn off MFA
          </button>
          <button type="button" onClick={cancel}>
            Cancel
          </button>
        </div>
      </form>
    );
  } else {
    body = (
      <div class="row">
        {enabled ? (
          <button type="button" disabled={busy} onClick={() => { setError(null); setPhase({ name: "disabling" }); }}>
            Disable MFA
          </button>
        ) : (
          <button type="button" class="primary" disabled={busy} onClick={() => void start()}>
            Enable MFA
          </button>
        )}
      </div>
    );
  }

  return (
    <section class="panel" aria-labelledby="mfa-title">
      <h2 id="mfa-title">Two-factor authentication</h2>
      <p class="muted small" role="status">
        {enabled ? "On: logging in asks for a code from your authenticator app." : "Off: logging in asks for your password only."}
      </p>
      {body}
      {error && <p class="error-note" role="alert">{error}</p>}
    </section>
  );
}
