// Every user's adapters (GET /v1/admin/adapters: by kind and owner, paged) and, for the one
// chosen, its versions (GET /v1/admin/adapters/{id}) with the admin actions: rollback (serve
// any version), approve (serve a candidate), discard (a version that is not served). Every
// action is audited by the API, with the note given here.
import {
  type AdapterVersion,
  type AdminAdapter,
  type AdminAdapterDetail,
  type AdminAdapterPage,
  call,
  type Discarded,
  get,
  type PointerMove,
  qs,
} from "./api";
import { h, message, pagedRows, replace, section, table, td, when } from "./dom";

const KINDS = ["persona", "skill", "domain", "style"] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE = 30;
const VERSIONS = 50;

type Action = "rollback" | "approve" | "discard";

/** What a version is, in a word: served, candidate (kept for review), not promoted, kept. */
export function versionState(v: AdapterVersion): string {
  return v.served ? "served" : v.candidate ? "candidate" : v.promoted === false ? "not promoted" : "kept";
}

/** Who owns an adapter, as the list shows it. */
export function ownerText(a: AdminAdapter): string {
  if (a.owner_email) return a.owner === "me" ? `${a.owner_email} (you)` : a.owner_email;
  return a.owner_user_id ?? "global";
}

/** A held-out comparison from a version's metrics: `loss 1.90 vs 1.80`; "" when not recorded. */
export function heldOut(metrics: AdapterVersion["metrics"]): string {
  const m = metrics ?? {};
  const num = (k: string) => (typeof m[k] === "number" ? (m[k] as number) : null);
  const [lossNew, lossCur] = [num("heldout_loss_new"), num("heldout_loss_current")];
  const parts: string[] = [];
  if (lossNew != null) parts.push(`loss ${lossNew.toFixed(2)}${lossCur != null ? ` vs ${lossCur.toFixed(2)}` : ""}`);
  const [alNew, alCur] = [num("alignment_new"), num("alignment_current")];
  if (alNew != null) parts.push(`alignment ${alNew.toFixed(2)}${alCur != null ? ` vs ${alCur.toFixed(2)}` : ""}`);
  return parts.join(" · ");
}

export interface AdaptersPanel {
  root: HTMLElement;
  /** Shows one adapter's versions (from the jobs table, or by id). */
  show: (adapterId: string) => void;
}

export function adaptersSection(): AdaptersPanel {
  const { root, body } = section("adapters", "Adapters (all users)");
  const kind = h("select", { id: "adapter-kind" },
    h("option", { value: "" }, "any"), ...KINDS.map((k) => h("option", { value: k }, k)));
  const owner = h("input", { id: "adapter-owner", placeholder: "owner's user id", size: 36 });
  const listStatus = h("p", { class: "status", id: "adapters-status", role: "status" });
  const tbody = h("tbody", { id: "adapter-list" });
  const more = h("button", { type: "button", id: "more-adapters", disabled: true }, "More adapters");
  const idInput = h("input", { id: "adapter-id", placeholder: "adapter id", size: 36 });
  const note = h("input", { id: "adapter-note", maxlength: 500, placeholder: "why (kept in the audit log)" });
  const detail = h("div", { id: "adapter-detail" });
  const actionStatus = h("p", { class: "status", id: "adapter-action", role: "status" });
  const moreVersions = h("button", { type: "button", id: "more-versions", disabled: true }, "More versions");
  let shown: string | null = null; // the adapter whose versions are shown
  let versionCursor: string | null = null;

  // --- the list ------------------------------------------------------------------------------
  const adapterRow = (a: AdminAdapter): HTMLTableRowElement =>
    h("tr", { "data-adapter-id": a.id, class: a.id === shown ? "chosen" : null },
      td(a.name, a.description ? h("div", { class: "muted" }, a.description) : null),
      td(ownerText(a)),
      td(a.adapter_type, h("div", { class: "muted" }, a.visibility)),
      td(`v${a.version}`, h("div", { class: "muted" }, `${a.version_count} kept, latest v${a.latest_version}`)),
      td(when(a.updated_at)),
      td(h("button", { type: "button", onclick: () => show(a.id) }, `Versions of ${a.name}`)));

  const listPage = pagedRows<AdminAdapter>({
    tbody, more, status: listStatus, what: "adapters", row: adapterRow,
    fetch: (cursor) => get<AdminAdapterPage>(`/v1/admin/adapters${qs({ limit: PAGE, cursor, type: kind.value, user_id: owner.value.trim() })}`),
    shown: (n) => `${n} adapter${n === 1 ? "" : "s"} shown.`,
  });
  const loadList = (reset: boolean) => {
    const ownerId = owner.value.trim();
    if (ownerId && !UUID.test(ownerId)) {
      listStatus.textContent = "The owner must be a user id (a UUID).";
      return;
    }
    listPage(reset);
  };

  // --- one adapter's versions and the actions --------------------------------------------------
  const act = (id: string, kind: Action, version: number) => {
    const path = `/v1/admin/adapters/${encodeURIComponent(id)}`;
    actionStatus.textContent = `${kind} v${version}…`;
    const done =
      kind === "rollback" ? call<PointerMove>("POST", `${path}/rollback`, { version, note: note.value.trim() || null })
        : kind === "approve" ? call<PointerMove>("POST", `${path}/versions/${version}/approve`)
          : call<Discarded>("DELETE", `${path}/versions/${version}`);
    done
      .then((r) => {
        actionStatus.textContent = "moved" in r
          ? (r.moved ? `Now serving v${r.version} (was v${r.previous_version}).` : `v${r.version} was already served.`)
          : `v${r.version} discarded.`;
        show(id);
        for (const row of tbody.querySelectorAll<HTMLTableRowElement>("tr[data-adapter-id]")) {
          if (row.dataset.adapterId === id) refreshRow(id, row);
        }
      })
      .catch((e: unknown) => {
        actionStatus.textContent = `${kind} v${version} failed: ${message(e)}`;
      });
  };

  const refreshRow = (id: string, row: HTMLTableRowElement) => {
    get<AdminAdapterDetail>(`/v1/admin/adapters/${encodeURIComponent(id)}?limit=1`)
      .then((d) => row.replaceWith(adapterRow(d)))
      .catch(() => undefined); // the list is refreshed on the next load
  };

  const versionRow = (id: string, v: AdapterVersion): HTMLTableRowElement =>
    h("tr", { "data-version": v.version, "data-state": versionState(v) },
      td(`v${v.version}`),
      td(versionState(v)),
      td(v.has_weights ? "weights" : "prompt only", v.rank != null ? h("div", { class: "muted" }, `rank ${v.rank}`) : null),
      td(heldOut(v.metrics)),
      td(v.job_id ? h("code", { title: v.job_id }, v.job_id.slice(0, 8)) : ""),
      td(when(v.created_at), v.change_note ? h("div", { class: "muted" }, v.change_note) : null),
      td(
        v.served ? null : h("button", { type: "button", onclick: () => act(id, "rollback", v.version) }, `Serve v${v.version}`),
        v.candidate ? h("button", { type: "button", onclick: () => act(id, "approve", v.version) }, `Approve v${v.version}`) : null,
        v.served ? null : h("button", { type: "button", class: "danger", onclick: () => act(id, "discard", v.version) }, `Discard v${v.version}`),
      ));

  const loadVersions = (id: string, reset: boolean) => {
    const rows = detail.querySelector<HTMLTableSectionElement>("tbody#versions");
    get<AdminAdapterDetail>(`/v1/admin/adapters/${encodeURIComponent(id)}${qs({ limit: VERSIONS, cursor: reset ? null : versionCursor })}`)
      .then((d) => {
        if (shown !== id) return;
        versionCursor = d.versions.next_cursor;
        if (!reset && rows) {
          for (const v of d.versions.items) rows.append(versionRow(id, v));
          moreVersions.disabled = !versionCursor;
          return;
        }
        const tbodyV = h("tbody", { id: "versions" }, ...d.versions.items.map((v) => versionRow(id, v)));
        const list = table(["Version", "State", "Kind", "Held-out", "Job", "Created", "Actions"], []);
        list.querySelector("tbody")!.replaceWith(tbodyV);
        moreVersions.disabled = !versionCursor;
        replace(detail,
          h("h3", {}, `${d.name} (${d.adapter_type}) · ${ownerText(d)} · serving v${d.version}`),
          h("p", { class: "muted" }, h("code", {}, d.id)),
          h("div", { class: "scroll" }, list), moreVersions);
      })
      .catch((e: unknown) => {
        if (shown !== id) return;
        replace(detail, h("p", { class: "muted" }, `Could not read the adapter ${id}: ${message(e)}`));
      });
  };
  moreVersions.addEventListener("click", () => {
    if (shown) loadVersions(shown, false);
  });

  const show = (id: string) => {
    shown = id;
    idInput.value = id;
    for (const row of tbody.querySelectorAll<HTMLTableRowElement>("tr[data-adapter-id]")) {
      row.classList.toggle("chosen", row.dataset.adapterId === id);
    }
    loadVersions(id, true);
  };

  // --- the forms -------------------------------------------------------------------------------
  const filters = h("form", { class: "row" },
    h("label", { for: "adapter-kind" }, "Kind"), kind,
    h("label", { for: "adapter-owner" }, "Owner"), owner,
    h("button", { type: "submit" }, "List adapters"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    loadList(true);
  });
  kind.addEventListener("change", () => loadList(true));
  more.addEventListener("click", () => loadList(false));
  const byId = h("form", { class: "row" },
    h("label", { for: "adapter-id" }, "Adapter"), idInput,
    h("button", { type: "submit" }, "Show versions"),
    h("label", { for: "adapter-note" }, "Note"), note);
  byId.addEventListener("submit", (e) => {
    e.preventDefault();
    const id = idInput.value.trim();
    if (id) show(id);
  });
  const list = table(["Name", "Owner", "Kind", "Serving", "Updated", ""], [], "Most recently changed first");
  list.querySelector("tbody")!.replaceWith(tbody);
  replace(body, filters, listStatus, h("div", { class: "scroll" }, list), more, byId, actionStatus, detail);
  loadList(true);
  return { root, show };
}
