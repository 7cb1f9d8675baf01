import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import { formatDate } from "../../lib/format";
import { useLoad } from "../../lib/useLoad";
import { logOut } from "../../state/auth";
import { ErrorNote, Loading } from "../common/Status";

export function SessionsPanel() {
  const list = useLoad(() => api.get("/v1/auth/sessions"), []);
  const [error, setError] = useState<string | null>(null);
  const revoke = async (id: string, current: boolean) => {
    setError(null);
    try {
      await api.delete("/v1/auth/sessions/{id}", { path: { id } });
      if (current) await logOut();
      else list.reload();
    } catch (e) {
      setError(userMessage(e));
    }
  };
  return (
    <section class="panel" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      {list.loading && <Loading />}
      <ErrorNote message={list.error ?? error} onRetry={list.reload} />
      {list.data && (
        <table class="table small">
          <thead>
            <tr><th scope="col">Device</th><th scope="col">IP</th><th scope="col">Started</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr>
          </thead>
          <tbody>
            {list.data.items.map((s) => (
              <tr key={s.id}>
                <td>{s.user_agent ?? "unknown"} {s.current && <strong>(this one)</strong>}</td>
                <td>{s.ip ?? "—"}</td>
                <td>{formatDate(s.created_at)}</td>
                <td>{formatDate(s.expires_at)}</td>
                <td>
                  <button type="button" class="danger" onClick={() => void revoke(s.id, s.current ?? false)}
                    aria-label={s.current ? "Sign out this session" : `Revoke session from ${s.user_agent ?? s.ip ?? "unknown device"}`}>
                    {s.current ? "Sign out" : "Revoke"}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
