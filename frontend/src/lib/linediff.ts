// A small line diff (longest common subsequence over lines), for the pretty-printed JSON of two
// artifact versions. Quadratic in the line counts: the diff is refused above MAX_CELLS (the
// schemas are bounded, so this is a safety net, not a limit anyone meets).

export type DiffOp = "same" | "added" | "removed";
export interface DiffLine {
  op: DiffOp;
  text: string;
  /** 1-based line number in the old text (removed, same) and in the new one (added, same). */
  oldNo: number | null;
  newNo: number | null;
}

export const MAX_CELLS = 4_000_000;

export function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** The lines of `before` and `after` in order, each the same, removed or added; null if too big. */
export function diffLines(before: string, after: string): DiffLine[] | null {
  const a = splitLines(before);
  const b = splitLines(after);
  // Common prefix and suffix first: most versions change a few lines.
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
  // lcs[i][j]: the LCS length of a[start+i..endA) and b[start+j..endB), row-major.
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = a[start + i] === b[start + j]
        ? lcs[(i + 1) * w + j + 1]! + 1
        : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  for (let k = 0; k < start; k++) out.push({ op: "same", text: a[k]!, oldNo: k + 1, newNo: k + 1 });
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[start + i] === b[start + j]) {
      out.push({ op: "same", text: a[start + i]!, oldNo: start + i + 1, newNo: start + j + 1 });
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i * w + j + 1]! >= lcs[(i + 1) * w + j]!)) {
      out.push({ op: "added", text: b[start + j]!, oldNo: null, newNo: start + j + 1 });
      j++;
    } else {
      out.push({ op: "removed", text: a[start + i]!, oldNo: start + i + 1, newNo: null });
      i++;
    }
  }
  for (let k = 0; k < a.length - endA; k++) {
    out.push({ op: "same", text: a[endA + k]!, oldNo: endA + k + 1, newNo: endB + k + 1 });
  }
  // Removed lines before added ones within a change block reads better: reorder each run.
  return regroup(out);
}

function regroup(lines: DiffLine[]): DiffLine[] {
  const out: DiffLine[] = [];
  let removed: DiffLine[] = [];
  let added: DiffLine[] = [];
  const flush = () => {
    out.push(...removed, ...added);
    removed = [];
    added = [];
  };
  for (const line of lines) {
    if (line.op === "removed") removed.push(line);
    else if (line.op === "added") added.push(line);
    else {
      flush();
      out.push(line);
    }
  }
  flush();
  return out;
}

export function diffStats(lines: readonly DiffLine[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const l of lines) {
    if (l.op === "added") added++;
    else if (l.op === "removed") removed++;
  }
  return { added, removed };
}

/** JSON as the viewer and the diff show it: two-space indentation, keys in their stored order. */
export function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? "null";
}
