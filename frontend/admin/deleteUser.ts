// "Delete user": a modal dialog of the page (no native confirm()) that says what goes, asks for
// the user's e-mail typed out (one wrong row clicked must not delete an account), and calls
// DELETE /v1/admin/users/{id}. The server answers 202 at once: the user's sessions end and a
// queued job purges their data, so the caller shows the row as "deleting". The keyboard stays
// inside like in the app's own delete dialog (the same focus trap and look).
import { trapTab } from "../src/lib/focusTrap";
import { type AdminUser, AdminError, call } from "./api";
import { h, message } from "./dom";

let dialogs = 0; // ids of the dialog's parts stay unique if one opens after another

const REFUSALS: Record<string, string> = {
  cannot_delete_self: "You cannot delete your own account here: use Settings → Your data in the app.",
  not_found: "This user no longer exists (deleted already?).",
};

function refusal(error: unknown): string {
  if (error instanceof AdminError && error.code in REFUSALS) return REFUSALS[error.code]!;
  return `Could not delete: ${message(error)}`;
}

/** Whether the typed text names the user (e-mail addresses compare without case). */
export function confirms(typed: string, user: Pick<AdminUser, "email">): boolean {
  return typed.trim().toLowerCase() === user.email.toLowerCase();
}

/** Opens the dialog over the page; `onDeleted` runs after the server's 202, `opener` gets the
 *  focus back when the dialog closes without a deletion. */
export function openDeleteUser(user: AdminUser, opts: { opener: HTMLElement; onDeleted: (user: AdminUser) => void }): HTMLElement {
  const n = ++dialogs;
  const title = `delete-user-title-${n}`;
  const what = `delete-user-what-${n}`;
  const typed = h("input", { type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": what });
  const confirmLabel = h("label", { class: "field" }, h("span", {}, `Type ${user.email} to confirm`), typed);
  const error = h("div", { class: "error-note", role: "alert" });
  const destroy = h("button", { type: "submit", class: "danger", disabled: true }, "Delete permanently");
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h("form", { class: "stack" }, confirmLabel, error, h("div", { class: "row" }, destroy, cancel));
  const dialog = h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-labelledby": title, "aria-describedby": what },
    h("h2", { id: title }, "Delete user"),
    h("div", { id: what },
      h("p", {}, `This deletes ${user.email} and everything in the account: conversations, files, contexts, preferences, adapters, artifacts, exports and voice recordings. Every session of the user ends at once; the data is purged by a queued job. It cannot be undone.`),
      h("p", { class: "muted" }, "The audit log keeps its entries with the user pseudonymised; database backups keep a copy for up to 7 days.")),
    form);
  const backdrop = h("div", { class: "modal-backdrop" }, dialog);
  let busy = false;

  const close = (deleted: boolean) => {
    backdrop.remove();
    if (!deleted) opts.opener.focus();
  };
  typed.addEventListener("input", () => {
    destroy.disabled = busy || !confirms(typed.value, user);
  });
  cancel.addEventListener("click", () => close(false));
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !busy) {
      e.stopPropagation();
      close(false);
    } else {
      trapTab(e, dialog);
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (busy || !confirms(typed.value, user)) return;
    busy = true;
    destroy.disabled = cancel.disabled = true;
    error.textContent = "";
    call<{ status: string }>("DELETE", `/v1/admin/users/${encodeURIComponent(user.id)}`)
      .then(() => {
        close(true);
        opts.onDeleted(user);
      })
      .catch((err: unknown) => {
        busy = false;
        cancel.disabled = false;
        destroy.disabled = !confirms(typed.value, user);
        error.textContent = refusal(err);
      });
  });
  document.body.append(backdrop);
  typed.focus();
  return dialog;
}
