// What a ConfigOps patch does to its artifact, for the approver: the RFC 6902 operations applied
// to the base version's schema (never changing it), and a line diff of the two pretty-printed
// JSON documents. The admin bundle shares no module with the app (vite.config.ts: a shared
// module would be a chunk outside dist/admin/), so this is the admin's own small copy of the
// app's line diff idea (src/lib/linediff.ts: LCS over lines, common prefix and suffix first).

export type Op = Record<string, unknown>;
export type Applied = { ok: true; doc: unknown } | { ok: false; error: string };

const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

function tokens(pointer: unknown): string[] | null {
  if (typeof pointer !== "string") return null;
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) return null;
  return pointer.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && equal(a[k], b[k]));
  }
  return false;
}

function index(arr: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === "-") return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`"${token}" is not an array index`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new Error(`index ${i} is out of range`);
  return i;
}

function parentOf(doc: unknown, path: string[]): unknown {
  let node = doc;
  for (const t of path.slice(0, -1)) {
    if (Array.isArray(node)) node = node[index(node, t, false)];
    else if (isObject(node) && t in node) node = node[t];
    else throw new Error(`no "${t}" on the way`);
  }
  return node;
}

function read(doc: unknown, path: string[]): unknown {
  let node = doc;
  for (const t of path) {
    if (Array.isArray(node)) node = node[index(node, t, false)];
    else if (isObject(node) && t in node) node = node[t];
    else throw new Error(`nothing at "${t}"`);
  }
  return node;
}

function add(doc: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = parentOf(doc, path);
  const last = path[path.length - 1]!;
  if (Array.isArray(parent)) parent.splice(index(parent, last, true), 0, value);
  else if (isObject(parent)) parent[last] = value;
  else throw new Error("the parent is not a container");
  return doc;
}

function remove(doc: unknown, path: string[]): unknown {
  if (path.length === 0) return null;
  const parent = parentOf(doc, path);
  const last = path[path.length - 1]!;
  if (Array.isArray(parent)) parent.splice(index(parent, last, false), 1);
  else if (isObject(parent) && last in parent) delete parent[last];
  else throw new Error(`nothing to remove at "${last}"`);
  return doc;
}

/** The document after the operations, or the first that does not apply (by its index). */
export function applyPatch(base: unknown, ops: readonly Op[]): Applied {
  let doc = clone(base);
  for (const [i, op] of ops.entries()) {
    try {
      const path = tokens(op.path);
      if (path === null) throw new Error("a bad path");
      switch (op.op) {
        case "add":
          doc = add(doc, path, clone(op.value));
          break;
        case "remove":
          doc = remove(doc, path);
          break;
        case "replace": {
          read(doc, path); // it must exist
          if (path.length === 0) {
            doc = clone(op.value);
            break;
          }
          const parent = parentOf(doc, path) as Record<string, unknown> | unknown[];
          const last = path[path.length - 1]!;
          if (Array.isArray(parent)) parent[index(parent, last, false)] = clone(op.value);
          else parent[last] = clone(op.value);
          break;
        }
        case "move":
        case "copy": {
          const from = tokens(op.from);
          if (from === null) throw new Error("a bad from");
          const value = clone(read(doc, from));
          if (op.op === "move") doc = remove(doc, from);
          doc = add(doc, path, value);
          break;
        }
        case "test":
          if (!equal(read(doc, path), op.value)) throw new Error("the test failed");
          break;
        default:
          throw new Error(`unknown op ${JSON.stringify(op.op)}`);
      }
    } catch (e) {
      return { ok: false, error: `operation ${i} (${String(op.op)} ${String(op.path)}): ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return { ok: true, doc };
}

export interface Line {
  op: "same" | "added" | "removed";
  text: string;
}

const MAX_CELLS = 4_000_000;

export const pretty = (v: unknown): string => JSON.stringify(v, null, 2) ?? "null";

/** The lines of `before` and `after` in order, each the same, removed or added; null if too big. */
export function lineDiff(before: string, after: string): Line[] | null {
  const a = before === "" ? [] : before.split("\n");
  const b = after === "" ? [] : after.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const n = endA - start;
  const m = endB - start;
  if ((n + 1) * (m + 1) > MAX_CELLS) return null;
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = a[start + i] === b[start + j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    }
  }
  const out: Line[] = a.slice(0, start).map((text) => ({ op: "same", text }));
  let removed: Line[] = [];
  let added: Line[] = [];
  const flush = () => {
    out.push(...removed, ...added);
    removed = [];
    added = [];
  };
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[start + i] === b[start + j]) {
      flush();
      out.push({ op: "same", text: a[start + i]! });
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i * w + j + 1]! >= lcs[(i + 1) * w + j]!)) {
      added.push({ op: "added", text: b[start + j]! });
      j++;
    } else {
      removed.push({ op: "removed", text: a[start + i]! });
      i++;
    }
  }
  flush();
  for (const text of a.slice(endA)) out.push({ op: "same", text });
  return out;
}
