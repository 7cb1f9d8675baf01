// Building the admin page's DOM with text only (never innerHTML: audit details and e-mail
// addresses are user data).
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (typeof value === "function") el.addEventListener(key.replace(/^on/, "").toLowerCase(), value);
    else if (key === "class") el.className = String(value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

export const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A section with a heading and a live status line; returns its parts. */
export function section(id: string, title: string): { root: HTMLElement; body: HTMLElement; status: HTMLElement } {
  const status = h("p", { class: "status", role: "status" });
  const body = h("div");
  const root = h("section", { id, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), status, body);
  return { root, body, status };
}

export function table(headers: string[], rows: Node[], caption?: string): HTMLTableElement {
  return h("table", {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...rows));
}

export const td = (...children: Child[]) => h("td", {}, ...children);

/** An ISO timestamp as `YYYY-MM-DD HH:MM:SS` (UTC); the text as it is if it is not one. */
export function when(iso: string | null | undefined): string {
  if (!iso) return "";
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toISOString().replace("T", " ").slice(0, 19);
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

/** A keyset-paged table body, and its loader: `load(true)` starts again from the newest (the
 *  answers of loads it replaced are dropped), `load(false)` appends the next page. `shown`
 *  words the status line for `n` rows; `loaded` sees each page's items. */
export function pagedRows<T>(opts: {
  tbody: HTMLElement;
  more: HTMLButtonElement;
  status: HTMLElement;
  what: string;
  fetch: (cursor: string | null) => Promise<Page<T>>;
  row: (item: T) => Node;
  shown: (n: number, more: boolean) => string;
  loaded?: (items: T[]) => void;
}): (reset: boolean) => void {
  let cursor: string | null = null;
  let generation = 0;
  return (reset) => {
    const mine = reset ? ++generation : generation;
    if (reset) {
      cursor = null;
      opts.tbody.replaceChildren();
    }
    opts.more.disabled = true;
    opts.status.textContent = `Loading ${opts.what}…`;
    opts.fetch(cursor)
      .then((page) => {
        if (mine !== generation) return;
        for (const item of page.items) opts.tbody.append(opts.row(item));
        cursor = page.next_cursor ?? null;
        opts.more.disabled = !cursor;
        opts.status.textContent = opts.shown(opts.tbody.children.length, cursor !== null);
        opts.loaded?.(page.items);
      })
      .catch((e: unknown) => {
        if (mine !== generation) return;
        opts.more.disabled = !cursor;
        opts.status.textContent = `Could not list the ${opts.what}: ${message(e)}`;
      });
  };
}
