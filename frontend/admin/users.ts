// Accounts: search by e-mail, change a role, disable or enable (PATCH /v1/admin/users/{id}; the
// user's sessions end), delete (DELETE /v1/admin/users/{id}, confirmed in a dialog; not offered
// on the admin's own row: that goes through Settings → Your data in the app). An account being
// deleted (the server's `status: "deleting"`, by the user or an admin) is shown as such, with
// no actions: it cannot be enabled again, and it leaves the list once the purge job is done.
import { type AdminUser, call, get, qs, type UserPage, type UserUpdate } from "./api";
import { openDeleteUser } from "./deleteUser";
import { h, message, replace, section, table, td, when } from "./dom";

/** Whether the account is on its way out (a server from before `status` never says so). */
export const isDeleting = (u: AdminUser): boolean => u.status === "deleting";
const stateOf = (u: AdminUser): AdminUser["status"] => (isDeleting(u) ? "deleting" : u.is_active ? "active" : "disabled");

/** The row of an account being deleted: what it is, since when, and nothing to click. */
function deletingRow(u: AdminUser): HTMLTableRowElement {
  const since = u.deletion_requested_at ? h("div", { class: "muted" }, `since ${when(u.deletion_requested_at)}`) : null;
  return h("tr", { "data-user": u.email, "data-status": stateOf(u) },
    td(u.email, u.handle ? h("div", { class: "muted" }, u.handle) : null), td(u.role),
    td(h("span", { class: "badge deleting", title: "Disabled; its data is being purged" }, "Deleting…"), since),
    td(u.email_verified ? "yes" : "no"), td(u.mfa_enabled ? "on" : "off"), td(u.created_at), td());
}

export function usersSection(): HTMLElement {
  const { root, body, status } = section("users", "Users");
  const tbody = h("tbody");
  const more = h("button", { type: "button", disabled: true }, "More users");
  const search = h("input", { type: "search", id: "user-search", placeholder: "part of an e-mail address" });
  let cursor: string | null = null;
  let filter = "";
  // The admin's own id, to leave "Delete" off their row (null until known, or if /v1/me fails:
  // the server refuses a self-delete with 409 cannot_delete_self anyway).
  const me = get<{ id: string }>("/v1/me").then((u) => u.id, () => null);
  let selfId: string | null = null;

  const update = (user: AdminUser, change: UserUpdate, row: HTMLTableRowElement) => {
    status.textContent = `Updating ${user.email}…`;
    call<AdminUser>("PATCH", `/v1/admin/users/${encodeURIComponent(user.id)}`, change)
      .then((updated) => {
        row.replaceWith(userRow(updated));
        status.textContent = `${updated.email}: role ${updated.role}, ${stateOf(updated)}.`;
      })
      .catch((e: unknown) => {
        status.textContent = `Could not update ${user.email}: ${message(e)}`;
      });
  };

  const userRow = (u: AdminUser): HTMLTableRowElement => {
    if (isDeleting(u)) return deletingRow(u);
    const row = h("tr", { "data-user": u.email, "data-status": stateOf(u) });
    const role = h("select", { "aria-label": `Role of ${u.email}` },
      ...["user", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
    role.addEventListener("change", () => update(u, { role: role.value as "user" | "admin" }, row));
    const toggle = h("button", { type: "button", onclick: () => update(u, { is_active: !u.is_active }, row) },
      u.is_active ? `Disable ${u.email}` : `Enable ${u.email}`);
    const remove = u.id === selfId ? null : h("button", { type: "button", class: "danger" }, `Delete ${u.email}`);
    remove?.addEventListener("click", () => openDeleteUser(u, { opener: remove, onDeleted: (gone) => {
      // As the list will say after a reload (the server answered 202: disabled, purge queued).
      row.replaceWith(userRow({ ...gone, is_active: false, status: "deleting", deletion_requested_at: new Date().toISOString() }));
      status.textContent = `${gone.email} is being deleted: signed out everywhere, account disabled, data purge queued.`;
      status.tabIndex = -1; // the row's buttons are gone: the focus goes to the news
      status.focus();
    } }));
    replace(row, td(u.email, u.handle ? h("div", { class: "muted" }, u.handle) : null), td(role),
      td(stateOf(u)), td(u.email_verified ? "yes" : "no"), td(u.mfa_enabled ? "on" : "off"),
      td(u.created_at), td(toggle, remove));
    return row;
  };

  // Each load is numbered: the answer to a load that a newer one replaced (a search typed
  // while the first page was still coming) is dropped, so no row is listed twice.
  let latest = 0;
  const load = (reset: boolean) => {
    if (reset) {
      cursor = null;
      tbody.replaceChildren();
    }
    const mine = ++latest;
    more.disabled = true;
    status.textContent = "Loading users…";
    Promise.all([get<UserPage>(`/v1/admin/users${qs({ limit: 50, cursor, email_contains: filter })}`), me])
      .then(([page, self]) => {
        if (mine !== latest) return;
        selfId = self;
        for (const u of page.items) tbody.append(userRow(u));
        cursor = page.next_cursor;
        more.disabled = !cursor;
        status.textContent = `${tbody.children.length} user${tbody.children.length === 1 ? "" : "s"} shown.`;
      })
      .catch((e: unknown) => {
        if (mine !== latest) return;
        more.disabled = !cursor;
        status.textContent = `Could not list users: ${message(e)}`;
      });
  };
  more.addEventListener("click", () => load(false));
  const form = h("form", { class: "row" },
    h("label", { for: "user-search" }, "Find users"), search, h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filter = search.value.trim();
    load(true);
  });
  const list = table(["E-mail", "Role", "State", "Verified", "MFA", "Created", ""], []);
  list.querySelector("tbody")!.replaceWith(tbody);
  replace(body, form, list, more);
  load(true);
  return root;
}
