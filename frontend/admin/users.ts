// Accounts: search by e-mail, change a role, disable or enable (PATCH /v1/admin/users/{id}; the
// user's sessions end), delete (DELETE /v1/admin/users/{id}, confirmed in a dialog; not offered
// on the admin's own row: that goes through Settings → Your data in the app).
import { type AdminUser, call, get, qs, type UserPage, type UserUpdate } from "./api";
import { openDeleteUser } from "./deleteUser";
import { h, message, replace, section, table, td } from "./dom";

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
  // Rows deleted in this page: their account is disabled and being purged (the list shows them
  // until the purge job removes them; re-enabling is refused).
  const deleting = new Set<string>();

  const update = (user: AdminUser, change: UserUpdate, row: HTMLTableRowElement) => {
    status.textContent = `Updating ${user.email}…`;
    call<AdminUser>("PATCH", `/v1/admin/users/${encodeURIComponent(user.id)}`, change)
      .then((updated) => {
        row.replaceWith(userRow(updated));
        status.textContent = `${updated.email}: role ${updated.role}, ${updated.is_active ? "active" : "disabled"}.`;
      })
      .catch((e: unknown) => {
        status.textContent = `Could not update ${user.email}: ${message(e)}`;
      });
  };

  const userRow = (u: AdminUser): HTMLTableRowElement => {
    const row = h("tr", { "data-user": u.email });
    if (deleting.has(u.id)) {
      replace(row, td(u.email), td(u.role), td(h("span", { class: "badge deleting" }, "deleting (disabled)")),
        td(u.email_verified ? "yes" : "no"), td(u.mfa_enabled ? "on" : "off"), td(u.created_at), td());
      return row;
    }
    const role = h("select", { "aria-label": `Role of ${u.email}` },
      ...["user", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
    role.addEventListener("change", () => update(u, { role: role.value as "user" | "admin" }, row));
    const toggle = h("button", { type: "button", onclick: () => update(u, { is_active: !u.is_active }, row) },
      u.is_active ? `Disable ${u.email}` : `Enable ${u.email}`);
    const remove = u.id === selfId ? null : h("button", { type: "button", class: "danger" }, `Delete ${u.email}`);
    remove?.addEventListener("click", () => openDeleteUser(u, { opener: remove, onDeleted: (gone) => {
      deleting.add(gone.id);
      const replaced = userRow(gone);
      row.replaceWith(replaced);
      status.textContent = `${gone.email} is being deleted: signed out everywhere, account disabled, data purge queued.`;
      status.tabIndex = -1; // the row's buttons are gone: the focus goes to the news
      status.focus();
    } }));
    replace(row, td(u.email, u.handle ? h("div", { class: "muted" }, u.handle) : null), td(role),
      td(u.is_active ? "active" : "disabled"), td(u.email_verified ? "yes" : "no"), td(u.mfa_enabled ? "on" : "off"),
      td(u.created_at), td(toggle, remove));
    return row;
  };

  const load = (reset: boolean) => {
    if (reset) {
      cursor = null;
      tbody.replaceChildren();
    }
    status.textContent = "Loading users…";
    Promise.all([get<UserPage>(`/v1/admin/users${qs({ limit: 50, cursor, email_contains: filter })}`), me])
      .then(([page, self]) => {
        selfId = self;
        for (const u of page.items) tbody.append(userRow(u));
        cursor = page.next_cursor;
        more.disabled = !cursor;
        status.textContent = `${tbody.children.length} user${tbody.children.length === 1 ? "" : "s"} shown.`;
      })
      .catch((e: unknown) => {
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
