// The admin page's script (it was inline; the gateway's CSP allows scripts from 'self' only).
// Self-contained on purpose: nothing here is shared with the app's bundle.
import "./admin.css";

interface AuditEvent {
  id: number;
  occurred_at: string;
  event: string;
  actor_user_id: string | null;
  subject_user_id: string | null;
  ip_addr: string | null;
  details: unknown;
}

let cursor: string | null = null;

const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function cell(text: unknown): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  return td;
}

async function api<T>(path: string): Promise<T> {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = (await response.json()) as { status: string; data: T; error?: { message: string } };
  if (body.status !== "ok") throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return body.data;
}

async function load(): Promise<void> {
  const page = await api<{ items: AuditEvent[]; next_cursor: string | null }>(
    "/v1/admin/audit?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""),
  );
  for (const e of page.items) {
    const row = document.createElement("tr");
    for (const v of [e.id, e.occurred_at, e.event, e.actor_user_id, e.subject_user_id, e.ip_addr, JSON.stringify(e.details)]) {
      row.appendChild(cell(v));
    }
    byId("events").appendChild(row);
  }
  cursor = page.next_cursor;
  byId<HTMLButtonElement>("more").disabled = !cursor;
}

byId("more").addEventListener("click", () => {
  load().catch((err: unknown) => {
    byId("chain").textContent = String(err);
  });
});
byId("verify").addEventListener("click", () => {
  api<{ ok: boolean; checked: number; first_broken_id: number | null }>("/v1/admin/audit/verify")
    .then((r) => {
      byId("chain").textContent = r.ok
        ? `chain intact: ${r.checked} events checked`
        : `chain BROKEN at event ${r.first_broken_id} (${r.checked} intact before it)`;
    })
    .catch((err: unknown) => {
      byId("chain").textContent = String(err);
    });
});
load().catch((err: unknown) => {
  byId("chain").textContent = String(err);
});
