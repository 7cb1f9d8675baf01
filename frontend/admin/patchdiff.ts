// What a ConfigOps patch does to its artifact, for the approver: a line diff of the two
// pretty-printed JSON documents (the server says what the patch makes: GET …/preview). The
// admin bundle shares no module with the app (vite.config.ts: a shared module would be a chunk
// outside dist/admin/), so this is the admin's own small copy of the app's line diff idea
// (src/lib/linediff.ts: LCS over lines, common prefix and suffix first).

export type Op = Record<string, unknown>;

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
