// Keeps the keyboard inside a modal dialog: Tab from its last control goes to its first, and
// Shift+Tab from its first to its last (the page behind is not reachable while it is open).

const FOCUSABLE = [
  "a[href]", "button:not([disabled])", "input:not([disabled]):not([type=hidden])",
  "select:not([disabled])", "textarea:not([disabled])", "[tabindex]:not([tabindex='-1'])",
].join(",");

export function focusables(container: HTMLElement): HTMLElement[] {
  return [...container.querySelectorAll<HTMLElement>(FOCUSABLE)];
}

/** A keydown handler for the dialog's container; true when it moved the focus. */
export function trapTab(e: KeyboardEvent, container: HTMLElement): boolean {
  if (e.key !== "Tab") return false;
  const all = focusables(container);
  if (all.length === 0) return false;
  const first = all[0]!;
  const last = all[all.length - 1]!;
  const active = document.activeElement;
  const outside = !(active instanceof Node) || !container.contains(active);
  if (e.shiftKey && (active === first || outside)) {
    e.preventDefault();
    last.focus();
    return true;
  }
  if (!e.shiftKey && (active === last || outside)) {
    e.preventDefault();
    first.focus();
    return true;
  }
  return false;
}
