// The skill adapters (SPEC §7.3-7.4), inside the clusters section: every adapter of type skill
// (GET /v1/admin/adapters?type=skill) with the cluster it serves, its status (active, disabled,
// merged into another), usage, success score, last training and owner; and "Review skills now"
// (POST /v1/admin/skills/review): the system proposes skills for qualifying clusters and the
// disabling or merging of skills, as ConfigOps patches an admin then decides in the patch queue.
import { type AdminAdapter, type AdminAdapterPage, type AdminCluster, call, get, qs, type SkillReview } from "./api";
import { h, message, replace, table, td, when } from "./dom";

const PAGE = 50;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `active`, `disabled`, or `merged into <name>` (the target's name when it is listed). */
export function skillStatusText(a: Pick<AdminAdapter, "status" | "merged_into">, names: ReadonlyMap<string, string> = new Map()): string {
  if (a.merged_into) return `merged into ${names.get(a.merged_into) ?? a.merged_into.slice(0, 8)}`;
  return a.status ?? "active";
}

/** A success score with two decimals; `none` before the router scored it. */
export function successText(score: number | null | undefined): string {
  return score == null ? "none" : score.toFixed(2);
}

/** The cluster a skill serves: the listed cluster's name, scope and size when known, else the
 *  adapter's own label of it, else the id's start. */
export function boundClusterText(a: Pick<AdminAdapter, "cluster_id" | "cluster_label">, known?: Pick<AdminCluster, "scope" | "size">): string {
  if (!a.cluster_id) return "no cluster";
  const name = a.cluster_label?.trim() || `cluster ${a.cluster_id.slice(0, 8)}`;
  return known ? `${name} (${known.scope}, ${known.size})` : a.cluster_label == null ? `${name} (retired or gone)` : name;
}

/** One line on what a review proposed, for the status line. */
export function reviewSummary(r: SkillReview): string {
  const s = r.skills;
  const p = r.pruning;
  const parts = [
    `${plural(s.proposed, "skill")} proposed (${plural(s.considered, "cluster")} considered, ${s.qualified} qualified)`,
    `${plural(p.disable.length, "disable")} and ${plural(p.merges.length, "merge")} proposed (${plural(p.considered, "active skill")} considered)`,
  ];
  const pending = s.pending + p.pending;
  let text = `${parts.join("; ")}. ${plural(pending, "patch", "patches")} await${pending === 1 ? "s" : ""} a decision in the patch queue.`;
  const invalid = s.rejected_invalid + p.rejected_invalid;
  if (invalid) text += ` ${invalid} stored rejected by validation.`;
  const limited = s.rate_limited + p.rate_limited;
  if (limited) text += ` ${limited} not proposed: the configops rate budget is spent (they are proposed on a later review).`;
  if (p.skipped) text += ` Pruning skipped: ${p.skipped}.`;
  return text;
}

export interface SkillsPanel {
  root: HTMLElement;
  /** Reads the skill adapters again. */
  load: () => void;
  /** Clusters were listed: the cluster cells name them with their scope and size. */
  clustersKnown: (known: ReadonlyMap<string, AdminCluster>) => void;
}

export function skillsPanel(options: { known: ReadonlyMap<string, AdminCluster> }): SkillsPanel {
  const root = h("div", { id: "skill-adapters" });
  const status = h("p", { class: "status", id: "skills-status", role: "status" });
  const list = h("div");
  const review = h("button", { type: "button", id: "review-skills" }, "Review skills now");
  let shown: AdminAdapter[] = [];

  const clusterCell = (a: AdminAdapter) => {
    const cell = td(boundClusterText(a, a.cluster_id ? options.known.get(a.cluster_id) : undefined));
    if (a.cluster_id) cell.dataset.boundCluster = a.cluster_id;
    return cell;
  };

  const render = (page: AdminAdapterPage) => {
    shown = page.items;
    if (page.items.length === 0) {
      replace(list, h("p", { id: "skills-none" }, "None yet. A skill adapter is created when a large, well-liked cluster's proposal is approved in the patch queue."));
      return;
    }
    const names = new Map(page.items.map((a) => [a.id, a.name]));
    const rows = page.items.map((a) =>
      h("tr", { "data-adapter-id": a.id, "data-status": a.status ?? "active" },
        td(a.name, a.description ? h("div", { class: "muted" }, a.description) : null),
        td(a.owner_email ?? (a.owner_user_id ? h("code", { title: a.owner_user_id }, a.owner_user_id.slice(0, 8)) : "global"),
          h("div", { class: "muted" }, a.visibility)),
        clusterCell(a),
        td(skillStatusText(a, names)),
        td(`${a.router.usage_count ?? 0}×`),
        td(successText(a.router.success_score)),
        td(a.router.last_trained_at ? when(a.router.last_trained_at) : "never",
          h("div", { class: "muted" }, `v${a.version} · ${a.has_weights ? "weights" : "not trained yet"}`))));
    replace(list,
      h("div", { class: "scroll" }, table(["Name", "Owner", "Cluster", "Status", "Used", "Success", "Last trained"], rows, "Adapters of type skill")),
      page.next_cursor ? h("p", { class: "muted" }, `The first ${page.items.length} are shown; the Adapters section lists them all (Kind: skill).`) : null);
  };

  const load = () => {
    replace(list, h("p", { class: "muted" }, "Loading skill adapters…"));
    get<AdminAdapterPage>(`/v1/admin/adapters${qs({ type: "skill", limit: PAGE })}`)
      .then(render)
      .catch((e: unknown) => {
        replace(list, h("p", { class: "muted" }, `Could not list the skill adapters: ${message(e)}`));
      });
  };

  review.addEventListener("click", () => {
    review.disabled = true;
    status.textContent = "Reviewing the clusters and skill adapters…";
    call<SkillReview>("POST", "/v1/admin/skills/review")
      .then((r) => {
        status.textContent = reviewSummary(r);
        load();
      })
      .catch((e: unknown) => {
        status.textContent = `Could not review the skills: ${message(e)}`;
      })
      .finally(() => {
        review.disabled = false;
      });
  });

  const clustersKnown = (known: ReadonlyMap<string, AdminCluster>) => {
    const byId = new Map(shown.map((a) => [a.id, a]));
    for (const row of root.querySelectorAll<HTMLElement>("tr[data-adapter-id]")) {
      const a = byId.get(row.dataset.adapterId ?? "");
      const cell = row.querySelector<HTMLElement>("[data-bound-cluster]");
      const c = a?.cluster_id ? known.get(a.cluster_id) : undefined;
      if (a && cell && c) cell.textContent = boundClusterText(a, c);
    }
  };

  replace(root, h("h3", {}, "Skill adapters"),
    h("p", { class: "muted" }, "The system proposes a skill for each large, well-liked cluster, and the disabling of idle skills or the merging of near-duplicates; every change is a patch an admin approves."),
    h("div", { class: "row" }, review), status, list);
  return { root, load, clustersKnown };
}
