// Accounts: search by e-mail, change a role, disable or enable (PATCH /v1/admin/users/{id}; the
// user's sessions end).
import { type AdminUser, call, get, qs, type UserPage, type UserUpdate } from "./api";
import { h, message, replace, section, table, td } from "./dom";

export function usersSection(): HTMLElement {
  const { root, body, status } = section("users", "Users");
  const tbody = h("tbody");
  const more = h("button", { type: "button", disabled: true }, "More users");
  const search = h("input", { type: "search", id: "user-search", placeholder: "part of an e-mail address" });
  let cursor: string | null = null;
  let filter = "";

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
    const role = h("select", { "aria-label": `Role of ${u.email}` },
      ...["user", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
    role.addEventListener("change", () => update(u, { role: role.value as "user" | "admin" }, row));
    const toggle = h("button", { type: "button", onclick: () => update(u, { is_active: !u.is_active }, row) },
      u.is_active ? `Disable ${u.email}` : `Enable ${u.email}`);
    replace(row, td(u.email, u.handle ? h("div", { class: "muted" }, u.handle) : null), td(role),
      td(u.is_active ? "active" : "disabled"), td(u.email_verified ? "yes" : "no"), td(u.mfa_enabled ? "on" : "off"),
      td(u.created_at), td(toggle));
    return row;
  };

  const load = (reset: boolean) => {
    if (reset) {
      cursor = null;
      tbody.replaceChildren();
    }
    status.textContent = "Loading users…";
    get<UserPage>(`/v1/admin/users${qs({ limit: 50, cursor, email_contains: filter })}`)
      .then((page) => {
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
