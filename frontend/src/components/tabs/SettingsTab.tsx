import { useEffect } from "preact/hooks";
import { api } from "../../api/client";
import { ApiError } from "../../api/envelope";
import type { HealthReport, UserOut } from "../../api/types";
import { formatBytes, formatDate } from "../../lib/format";
import { useLoad } from "../../lib/useLoad";
import { reloadUser, sessionId } from "../../state/auth";
import { ErrorNote, Loading } from "../common/Status";
import { EmailPanel } from "../settings/EmailPanel";
import { MfaPanel } from "../settings/MfaPanel";
import { PasswordPanel } from "../settings/PasswordPanel";
import { VoicePanel } from "../settings/VoicePanel";
import { YourDataPanel } from "../settings/YourDataPanel";
import "../../styles/settings.css";
import { DraftsPanel } from "./DraftsPanel";
import { SessionsPanel } from "./SessionsPanel";

/** GET /healthz: the report, also when degraded (503 with the report in `details`). */
async function health(): Promise<HealthReport> {
  try {
    return await api.get("/healthz", { retries: 0 });
  } catch (error) {
    if (error instanceof ApiError && error.details && typeof error.details === "object" && "version" in error.details) {
      return error.details as HealthReport;
    }
    throw error;
  }
}

function About() {
  const h = useLoad(health, []);
  return (
    <section class="panel" aria-labelledby="about-title">
      <h2 id="about-title">About</h2>
      {h.loading && <Loading />}
      <ErrorNote message={h.error} onRetry={h.reload} />
      {h.data && (
        <dl class="details">
          <dt>Version</dt><dd>{h.data.version ?? "unknown"}</dd>
          <dt>Commit</dt><dd class="monospace">{h.data.git_commit ?? "unknown"}</dd>
          <dt>Status</dt><dd>{h.data.status}</dd>
        </dl>
      )}
    </section>
  );
}

function Limits() {
  const l = useLoad(() => api.get("/v1/files/limits"), []);
  return (
    <section class="panel" aria-labelledby="limits-title">
      <h2 id="limits-title">Upload limits</h2>
      {l.loading && <Loading />}
      <ErrorNote message={l.error} onRetry={l.reload} />
      {l.data && (
        <dl class="details">
          <dt>Plan</dt><dd>{l.data.plan_tier}</dd>
          <dt>Largest file</dt><dd>{formatBytes(l.data.max_bytes)}</dd>
          <dt>File types</dt><dd>{l.data.allowed_extensions.join(" ")}</dd>
        </dl>
      )}
    </section>
  );
}

export function SettingsTab({ user }: { user: UserOut }) {
  const sid = sessionId.value;
  // Sign-up and log-in answers leave the MFA state out: ask /v1/me once, for "on"/"off".
  useEffect(() => {
    if (user.mfa_enabled == null) reloadUser().catch(() => undefined);
  }, [user.id]);
  return (
    <div class="tab-page grid">
      <section class="panel" aria-labelledby="session-title">
        <h2 id="session-title">Your account</h2>
        <dl class="details">
          <dt>E-mail</dt><dd>{user.email} {user.email_verified ? "(verified)" : "(not verified)"}</dd>
          <dt>User ID</dt><dd class="monospace">{user.id}</dd>
          <dt>Role</dt><dd>{user.role}</dd>
          <dt>Session</dt><dd class="monospace" title={sid ?? ""}>{sid ? `${sid.slice(0, 8)}…` : "unknown"}</dd>
          <dt>Two-factor</dt><dd>{user.mfa_enabled ? "on" : user.mfa_enabled === false ? "off" : "unknown"}</dd>
          <dt>Member since</dt><dd>{formatDate(user.created_at)}</dd>
        </dl>
      </section>
      <EmailPanel user={user} />
      <MfaPanel enabled={user.mfa_enabled} />
      <PasswordPanel />
      <VoicePanel />
      <YourDataPanel user={user} />
      <SessionsPanel />
      <DraftsPanel />
      <Limits />
      <About />
    </div>
  );
}
