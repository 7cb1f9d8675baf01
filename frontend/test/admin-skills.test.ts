// The admin console's skill adapters (status, merged into, success, last trained, owner), the
// "Review skills now" button, and the clusters' owner e-mail, in a DOM with a fake API.
import { afterEach, describe, expect, it, vi } from "vitest";
import { clustersSection } from "../admin/clusters";
import { boundClusterText, reviewSummary, skillStatusText, successText } from "../admin/skills";
import { fail, flush, ok } from "./helpers";

afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
});

const T = "2026-11-27T10:00:00+00:00";
const OWNER = "11111111-2222-4333-8444-555555555555";
const cluster = (id: string, over: Record<string, unknown> = {}) => ({
  id, scope: "user", label: "SQL tuning", description: null, labeled_by: "model", keywords: ["sql"],
  size: 40, positive_count: 30, negative_count: 10, created_at: T, updated_at: T, user_id: OWNER,
  owner_email: "ada@example.com", ...over,
});
const skill = (id: string, over: Record<string, unknown> = {}) => ({
  id, name: `skill-${id}`, description: "Answers about sql.", adapter_type: "skill", mode: "local", visibility: "private",
  owner: "private", version: 2, latest_version: 2, version_count: 2, has_weights: true, base_model: "m",
  router: { usage_count: 12, success_score: 0.25, last_used_at: T, last_trained_at: T },
  created_at: T, updated_at: T, owner_user_id: OWNER, owner_email: "ada@example.com",
  status: "active", merged_into: null, cluster_id: "c-1", cluster_label: "SQL tuning", ...over,
});
const outcome = { proposed: 0, pending: 0, rejected_invalid: 0, unexpected: 0, rate_limited: 0, refused: 0, patch_ids: [], problems: [] };
const REVIEW = {
  skills: { ...outcome, proposed: 2, pending: 2, patch_ids: [7, 8], scope: "all", user_id: null, considered: 5, qualified: 2, skipped: { "too small": 3 } },
  pruning: { ...outcome, proposed: 2, pending: 1, rejected_invalid: 1, rate_limited: 1, patch_ids: [9, 10], skipped: null, considered: 4,
    disable: ["sk-3"], merges: [{ source: "sk-2", into: "sk-1", similarity: 0.95 }] },
};

describe("skill adapter wording", () => {
  it("words the status, the success score and the cluster", () => {
    expect(skillStatusText({ status: "active", merged_into: null })).toBe("active");
    expect(skillStatusText({ status: "disabled", merged_into: null })).toBe("disabled");
    expect(skillStatusText({ status: "disabled", merged_into: "sk-1-long-id" }, new Map([["sk-1-long-id", "skill-sql"]]))).toBe("merged into skill-sql");
    expect(skillStatusText({ status: "disabled", merged_into: "abcdef0123456789" })).toBe("merged into abcdef01");
    expect(successText(null)).toBe("none");
    expect(successText(0.256)).toBe("0.26");
    expect(boundClusterText({ cluster_id: null, cluster_label: null })).toBe("no cluster");
    expect(boundClusterText({ cluster_id: "c-1", cluster_label: "SQL tuning" }, { scope: "user", size: 40 })).toBe("SQL tuning (user, 40)");
    expect(boundClusterText({ cluster_id: "c-1", cluster_label: "SQL tuning" })).toBe("SQL tuning");
    expect(boundClusterText({ cluster_id: "0123456789ab", cluster_label: null })).toBe("cluster 01234567 (retired or gone)");
  });

  it("sums up a review", () => {
    expect(reviewSummary(REVIEW as never)).toBe(
      "2 skills proposed (5 clusters considered, 2 qualified); 1 disable and 1 merge proposed (4 active skills considered). "
      + "3 patches await a decision in the patch queue. 1 stored rejected by validation. "
      + "1 not proposed: the configops rate budget is spent (they are proposed on a later review).");
    const quiet = { skills: { ...REVIEW.skills, proposed: 0, pending: 0, considered: 1, qualified: 0 },
      pruning: { ...outcome, skipped: "another skill review is in progress", considered: 0, disable: [], merges: [] } };
    expect(reviewSummary(quiet as never)).toBe(
      "0 skills proposed (1 cluster considered, 0 qualified); 0 disables and 0 merges proposed (0 active skills considered). "
      + "0 patches await a decision in the patch queue. Pruning skipped: another skill review is in progress.");
  });
});

describe("the skill adapters in the clusters section", () => {
  it("lists skills with status, usage and owner, reviews them and shows owners' e-mail", async () => {
    const calls: string[] = [];
    let reviewed = false;
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      calls.push(`${init.method ?? "GET"} ${input}`);
      if (input.startsWith("/v1/admin/clusters?")) return ok({ items: [cluster("c-1"), cluster("c-g", { scope: "global", user_id: null, owner_email: null })], next_cursor: null });
      if (input.startsWith("/v1/admin/adapters?")) {
        const items = [skill("sk-1"), skill("sk-2", { status: "disabled", merged_into: "sk-1", cluster_id: "c-2", cluster_label: null,
          router: { usage_count: 3, success_score: null, last_used_at: null, last_trained_at: null }, has_weights: false })];
        if (reviewed) items.push(skill("sk-3", { cluster_id: "c-g", owner_user_id: null, owner_email: null, visibility: "global" }));
        return ok({ items, next_cursor: null });
      }
      if (input === "/v1/admin/skills/review") {
        reviewed = true;
        return ok(REVIEW);
      }
      return fail(404, "not_found", `unexpected ${input}`);
    }));
    const root = clustersSection({ rereadMs: 0 });
    document.body.append(root);
    await flush();
    expect(calls).toContain("GET /v1/admin/adapters?type=skill&limit=50");
    const owned = root.querySelector<HTMLTableRowElement>('tr[data-cluster-id="c-1"]')!;
    expect(owned.cells[1]!.textContent).toBe("userada@example.com");
    expect(root.querySelector<HTMLTableRowElement>('tr[data-cluster-id="c-g"]')!.cells[1]!.textContent).toBe("global");

    const first = root.querySelector<HTMLTableRowElement>('#skill-adapters tr[data-adapter-id="sk-1"]')!;
    expect([...first.cells].map((c) => c.textContent)).toEqual([
      "skill-sk-1Answers about sql.", "ada@example.comprivate", "SQL tuning (user, 40)", "active", "12×", "0.25",
      "2026-11-27 10:00:00v2 · weights"]);
    const merged = root.querySelector<HTMLTableRowElement>('#skill-adapters tr[data-adapter-id="sk-2"]')!;
    expect(merged.dataset.status).toBe("disabled");
    expect([...merged.cells].slice(2).map((c) => c.textContent)).toEqual([
      "cluster c-2 (retired or gone)", "merged into skill-sk-1", "3×", "none", "neverv2 · not trained yet"]);

    root.querySelector<HTMLButtonElement>("#review-skills")!.click();
    await flush();
    expect(calls).toContain("POST /v1/admin/skills/review");
    expect(root.querySelector("#skills-status")?.textContent).toMatch(/^2 skills proposed \(5 clusters considered, 2 qualified\); 1 disable and 1 merge proposed/);
    // The list is read again after the review: the new global skill is there, named by its cluster.
    const added = root.querySelector<HTMLTableRowElement>('#skill-adapters tr[data-adapter-id="sk-3"]')!;
    expect([...added.cells].slice(1, 3).map((c) => c.textContent)).toEqual(["globalglobal", "SQL tuning (global, 40)"]);
    expect(root.querySelector<HTMLButtonElement>("#review-skills")!.disabled).toBe(false);
  });

  it("says why a review failed", async () => {
    vi.stubGlobal("fetch", vi.fn(async (input: string) => {
      if (input === "/v1/admin/skills/review") return fail(409, "conflict", "a skill review is in progress");
      return ok({ items: [], next_cursor: null });
    }));
    const root = clustersSection();
    await flush();
    expect(root.querySelector("#skills-none")?.textContent).toMatch(/^None yet\./);
    root.querySelector<HTMLButtonElement>("#review-skills")!.click();
    await flush();
    expect(root.querySelector("#skills-status")?.textContent).toBe("Could not review the skills: a skill review is in progress");
  });
});
