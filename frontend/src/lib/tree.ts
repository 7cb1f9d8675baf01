// A conversation is a tree: every message names its parent, a regenerated answer is a sibling
// of the earlier ones, an edited question a sibling of the original. The view shows one path
// from the root; at each fork the chosen child (default: the newest) is followed.

export interface TreeNode {
  id: string;
  parentId: string | null;
  seq: number;
  /** Summaries (memory folds) are not part of the visible thread. */
  hidden?: boolean;
}

const ROOT = "";

export function childrenIndex<T extends TreeNode>(nodes: Iterable<T>): Map<string, T[]> {
  const index = new Map<string, T[]>();
  for (const node of nodes) {
    if (node.hidden) continue;
    const key = node.parentId ?? ROOT;
    const list = index.get(key);
    if (list) list.push(node);
    else index.set(key, [node]);
  }
  for (const list of index.values()) list.sort((a, b) => a.seq - b.seq);
  return index;
}

/** The thread shown: from the root, the selected (else newest) child at every fork. A message
 *  whose parent is hidden or missing is treated as a child of its nearest visible ancestor. */
export function visiblePath<T extends TreeNode>(nodes: Iterable<T>, selected: Readonly<Record<string, string>>): T[] {
  const all = new Map<string, T>();
  for (const n of nodes) all.set(n.id, n);
  const lifted: T[] = [];
  for (const n of all.values()) {
    if (n.hidden) continue;
    let parent = n.parentId;
    for (;;) {
      if (parent === null) break;
      const p = all.get(parent);
      if (p && !p.hidden) break;
      parent = p ? p.parentId : null;
    }
    lifted.push(parent === n.parentId ? n : { ...n, parentId: parent });
  }
  const index = childrenIndex(lifted);
  const path: T[] = [];
  let key = ROOT;
  for (let guard = 0; guard < 100_000; guard++) {
    const children = index.get(key);
    if (!children || children.length === 0) break;
    const chosen = children.find((c) => c.id === selected[key]) ?? children[children.length - 1]!;
    path.push(all.get(chosen.id) ?? chosen);
    key = chosen.id;
  }
  return path;
}

/** The siblings of a message (itself included, in order) and its position among them. */
export function siblings<T extends TreeNode>(nodes: Iterable<T>, node: T): { list: T[]; index: number } {
  const list = childrenIndex(nodes).get(node.parentId ?? ROOT) ?? [node];
  return { list, index: Math.max(0, list.findIndex((n) => n.id === node.id)) };
}

export function parentKey(node: TreeNode): string {
  return node.parentId ?? ROOT;
}
