// The security audit log (newest first, paged) and its hash-chain check.
import { type AuditPage, type Chain, get, qs } from "./api";
import { h, message, replace, section, table, td } from "./dom";

export function chainText(r: Chain): string {
  return r.ok
    ? `Chain intact: ${r.checked} events checked.`
    : `Chain BROKEN at event ${r.first_broken_id} (${r.checked} intact before it).`;
}

export function auditSection(): HTMLElement {
  const { root, body, status } = section("audit", "Security audit log");
  const chain = h("p", { id: "chain", role: "status", "aria-live": "polite" });
  const tbody = h("tbody", { id: "events" });
  const more = h("button", { type: "button", id: "more", disabled: true }, "Older events");
  const eventFilter = h("input", { id: "audit-event", placeholder: "e.g. login_failed" });
  let cursor: string | null = null;

  const load = (reset: boolean) => {
    if (reset) {
      cursor = null;
      tbody.replaceChildren();
    }
    get<AuditPage>(`/v1/admin/audit${qs({ limit: 100, cursor, event: eventFilter.value.trim() })}`)
      .then((page) => {
        for (const e of page.items) {
          tbody.append(h("tr", {}, td(e.id), td(e.occurred_at), td(e.event), td(e.actor_user_id ?? ""),
            td(e.subject_user_id ?? ""), td(e.ip_addr ?? ""), td(h("code", {}, JSON.stringify(e.details)))));
        }
        cursor = page.next_cursor;
        more.disabled = !cursor;
        status.textContent = `${tbody.children.length} event${tbody.children.length === 1 ? "" : "s"} shown.`;
      })
      .catch((e: unknown) => {
        status.textContent = `Could not read the audit log: ${message(e)}`;
      });
  };
  const verify = h("button", { type: "button", id: "verify" }, "Verify the hash chain");
  verify.addEventListener("click", () => {
    chain.textContent = "Checking the chain…";
    get<Chain>("/v1/admin/audit/verify")
      .then((r) => {
        chain.textContent = chainText(r);
        chain.className = r.ok ? "ok" : "broken";
      })
      .catch((e: unknown) => {
        chain.textContent = `Chain check failed: ${message(e)}`;
      });
  });
  more.addEventListener("click", () => load(false));
  const form = h("form", { class: "row" }, h("label", { for: "audit-event" }, "Event"), eventFilter, h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load(true);
  });
  const list = table(["#", "When", "Event", "Actor", "Subject", "IP", "Details"], []);
  list.querySelector("tbody")!.replaceWith(tbody);
  replace(body, h("div", { class: "row" }, verify), chain, form, list, more);
  load(true);
  return root;
}
