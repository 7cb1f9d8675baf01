// The admin console's ConfigOps patch queue (diff, dry-run, decide, apply, roll back) and the
// clusters with the skill adapters, in a DOM with a fake API.
import { afterEach, describe, expect, it, vi } from "vitest";
import { clusterName, clustersSection, sizeText } from "../admin/clusters";
import { configOpsSection, dryRunHeadline, problemsOf, proposerText, targetText } from "../admin/configops";
import { lineDiff } from "../admin/patchdiff";
import { fail, flush, ok } from "./helpers";

/** Waits (real timers) until `check` holds, or fails after ~1 s. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}
afterEach(() => {
  vi.unstubAllGlobals();
  document.body.replaceChildren();
});

const ART = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const ADMIN = "11111111-2222-4333-8444-555555555555";
const T = "2026-11-27T10:00:00+00:00";
const BASE = { kind: "policy.routing", rules: [{ id: "r1", when: "true", actions: [] }] };
const OPS = [{ op: "add", path: "/rules/-", value: { id: "r2", when: "ctx_cluster == 'cooking'", actions: [] } }];
const DRY = {
  kind: "policy.routing", sample: 200, scope: "all users", selected: 40, replayed: 38,
  skipped: { total: 2, reasons: { "no stored routing inputs (the trace predates them)": 2 } },
  changed: 3, adapters_changed: 2, weights_only_changed: 1, unchanged: 35, reproduced: 38,
  rules: { r1: { before: 38, after: 38 }, r2: { before: 0, after: 3 } },
  adapters: { "skill-cooking": { gained: 2, lost: 0 } }, adapters_gained: 2, adapters_lost: 0,
  candidates_gone: 0, elapsed_ms: 12.5,
  examples: [{ message_id: "m-1", before: [{ id: "persona", weight: 1 }], after: [{ id: "persona", weight: 1 }, { id: "skill-cooking", weight: 0.5 }], rules_flipped: ["r2"] }],
};

function patch(id: number, over: Record<string, unknown> = {}) {
  return {
    id, artifact_id: ART, kind: "policy.routing", owner_user_id: null, proposer: "human_admin", proposed_by: ADMIN,
    patch: OPS, justification: "route cooking questions to the skill", status: "pending", base_version: 2,
    new_name: null, new_visibility: null, new_description: null, validation: { ok: true, problems: [] }, dry_run: DRY,
    decided_by: null, decision_reason: null, applied_version: null, failure_reason: null, meta: {},
    created_at: T, decided_at: null, applied_at: null, updated_at: T, ...over,
  };
}

describe("the line diff (admin's own copy)", () => {
  it("diffs lines, removed before added", () => {
    expect(lineDiff("a\nb\nc", "a\nB\nc\nd")).toEqual([
      { op: "same", text: "a" }, { op: "removed", text: "b" }, { op: "added", text: "B" },
      { op: "same", text: "c" }, { op: "added", text: "d" },
    ]);
    expect(lineDiff("", "x")).toEqual([{ op: "added", text: "x" }]);
  });
});

describe("ConfigOps words", () => {
  it("names targets, proposers, problems and the dry-run's outcome", () => {
    expect(targetText(patch(1) as never)).toBe("policy.routing aaaaaaaa (from v2)");
    expect(targetText(patch(1, { artifact_id: null, kind: "adapter.lora", new_name: "cooking", new_visibility: "global" }) as never))
      .toBe("new adapter.lora “cooking” (global)");
    expect(proposerText(patch(1) as never)).toBe("admin 11111111");
    expect(proposerText(patch(1, { proposer: "system_llm", proposed_by: null }) as never)).toBe("the system (model)");
    expect(proposerText(patch(1, { proposer: "user" }) as never)).toBe("user 11111111");
    expect(problemsOf({ ok: false, problems: [{ path: "/rules/0/when", message: "unknown name" }, "odd"] }))
      .toEqual([{ path: "/rules/0/when", message: "unknown name" }, { path: "", message: "odd" }]);
    expect(problemsOf(null)).toEqual([]);
    expect(dryRunHeadline(DRY)).toBe("3 of 38 replayed turns change · 2 skipped · 38 of 38 reproduce what the turn did");
    expect(dryRunHeadline({ skipped: "a new artifact has no traffic to replay" })).toBe("Not replayed: a new artifact has no traffic to replay.");
    expect(dryRunHeadline(null)).toContain("No dry-run");
  });
});

describe("admin ConfigOps patch queue", () => {
  it("lists patches, shows one with its diff and dry-run, approves, applies (polling) and rolls back", async () => {
    const calls: string[] = [];
    let state = "pending";
    let reads = 0;
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      const method = init.method ?? "GET";
      calls.push(`${method} ${input}${init.body ? ` ${String(init.body)}` : ""}`);
      if (input.startsWith("/v1/config/patches?")) {
        if (input.includes("cursor=p1")) return ok({ items: [patch(5, { status: "applied", applied_version: 2 })], next_cursor: null });
        if (input.includes("status=rejected")) return ok({ items: [], next_cursor: null });
        return ok({ items: [patch(7), patch(6, { status: "rejected", dry_run: null, decision_reason: "invalid: see validation.problems",
          validation: { ok: false, problems: [{ path: "/rules/1/when", message: "<b>unknown</b> name 'ctx_clstr'" }] } })], next_cursor: "p1" });
      }
      if (input === "/v1/config/patches/7/decide") {
        state = "approved";
        return ok(patch(7, { status: "approved", decided_by: ADMIN, decision_reason: JSON.parse(String(init.body)).reason }));
      }
      if (input === "/v1/config/patches/7/apply") {
        state = "applying";
        return ok(patch(7, { status: "applying" }), 202);
      }
      if (input === "/v1/config/patches/7") {
        if (state === "applying" && ++reads >= 2) state = "applied";
        return ok(patch(7, { status: state, applied_version: state === "applied" ? 3 : null }));
      }
      if (input === "/v1/config/patches/6") return ok(patch(6, { status: "rejected", dry_run: null, validation: { ok: false, problems: [{ path: "/rules/1/when", message: "unknown name" }] } }));
      if (input === "/v1/config/patches/7/preview") return ok({ patch_id: 7, base_version: 2, before: BASE, after: { ...BASE, rules: [...BASE.rules, OPS[0]!.value] }, problems: [] });
      if (input === `/v1/artifacts/${ART}`) return ok({ id: ART, type: "policy.routing", name: "default routing", description: null, schema: BASE, visibility: "global", version: 3, owner: "global", created_at: T, updated_at: T });
      if (input.startsWith(`/v1/artifacts/${ART}/versions?`)) {
        return ok({ items: [3, 2, 1].map((v) => ({ artifact_id: ART, version: v, schema: BASE, created_by: "user", change_note: v === 2 ? "good one" : null, created_at: T })), next_cursor: null });
      }
      if (input === "/v1/config/propose_patch") return ok(patch(8, { meta: { restores_version: 2 }, justification: "v3 misroutes" }), 201);
      return fail(404, "not_found", `unexpected ${input}`);
    }));
    const { root, show, stop } = configOpsSection({ pollMs: 5 });
    document.body.append(root);
    await flush();

    expect(calls[0]).toBe("GET /v1/config/patches?limit=30");
    // Labels distinct from the training section's "Status" (Playwright's exact names).
    expect(root.querySelector('label[for="patch-status"]')?.textContent).toBe("Patch status");
    const rows = () => [...root.querySelectorAll<HTMLTableRowElement>("#patch-list tr")];
    expect(rows().map((r) => `${r.dataset.patchId}:${r.dataset.patchStatus}`)).toEqual(["7:pending", "6:rejected"]);
    expect(rows()[0]!.textContent).toContain("policy.routing aaaaaaaa (from v2)");
    expect(rows()[0]!.textContent).toContain("admin 11111111");
    expect(rows()[0]!.textContent).toContain("route cooking questions to the skill");
    expect(root.querySelector("#patches-status")?.textContent).toBe("2 patches shown; more are older.");
    root.querySelector<HTMLButtonElement>("#more-patches")!.click();
    await flush();
    expect(calls.at(-1)).toBe("GET /v1/config/patches?limit=30&cursor=p1");
    expect(rows().map((r) => r.dataset.patchId)).toEqual(["7", "6", "5"]);

    // One patch: facts, validation, dry-run and the diff of the artifact.
    root.querySelector<HTMLButtonElement>('button[aria-label="Review patch 7"]')!.click();
    await flush();
    const detail = root.querySelector("#patch-detail")!;
    expect(detail.querySelector("h3")?.textContent).toBe("Patch #7: policy.routing aaaaaaaa (from v2) · pending");
    expect(detail.textContent).toContain("Valid: it applies");
    expect(detail.querySelector(".dry-run-headline")?.textContent).toBe("3 of 38 replayed turns change · 2 skipped · 38 of 38 reproduce what the turn did");
    expect(detail.querySelector('tr[data-name="r2"]')?.textContent).toBe("r203");
    expect(detail.querySelector('tr[data-name="skill-cooking"]')?.textContent).toBe("skill-cooking20");
    expect(detail.textContent).toContain("adapters gained 2, lost 0");
    expect(detail.textContent).toContain("persona × 1 → persona × 1, skill-cooking × 0.5 · rules flipped: r2");
    expect(detail.textContent).toContain("2 × no stored routing inputs");
    expect(calls).toContain("GET /v1/config/patches/7/preview");
    const added = [...detail.querySelectorAll(".diff-line.added")].map((l) => l.textContent);
    expect(added.some((l) => l!.includes('"id": "r2"'))).toBe(true);
    expect(detail.querySelector("pre.diff")?.getAttribute("aria-label")).toBe("Changes from v2 to the patched schema");
    expect(detail.textContent).toContain("/rules/-");

    // Approve needs a reason.
    const button = (name: string) => [...detail.querySelectorAll<HTMLButtonElement>("button")].find((b) => b.textContent === name);
    expect(button("Apply")).toBeUndefined();
    button("Approve")!.click();
    await flush();
    expect(root.querySelector("#patch-action")?.textContent).toBe("A reason is required to approve or reject.");
    expect(calls.some((c) => c.includes("/decide"))).toBe(false);
    expect(root.querySelector('label[for="patch-reason"]')?.textContent).toBe("Reason");
    (detail.querySelector("#patch-reason") as HTMLInputElement).value = "  dry-run looks right ";
    button("Approve")!.click();
    await flush();
    expect(calls).toContain('POST /v1/config/patches/7/decide {"decision":"approve","reason":"dry-run looks right"}');
    expect(root.querySelector("#patch-action")?.textContent).toBe("Patch #7 is approved.");
    expect(rows()[0]!.dataset.patchStatus).toBe("approved");
    expect(button("Approve")).toBeUndefined();

    // Apply: applying, read again until applied.
    button("Apply")!.click();
    await flush();
    expect(calls).toContain("POST /v1/config/patches/7/apply");
    await until(() => rows()[0]!.dataset.patchStatus === "applied");
    expect(root.querySelector("#patch-action")?.textContent).toBe("Patch #7 applied: the artifact is now at v3.");
    expect(root.querySelector("#patch-detail")?.textContent).toContain("as v3");
    // read again while applying: the first read still says applying, the second applied
    const afterApply = calls.slice(calls.indexOf("POST /v1/config/patches/7/apply"));
    expect(afterApply.filter((c) => c === "GET /v1/config/patches/7").length).toBe(2);

    // Roll back: choose an earlier version, which proposes a restore patch.
    [...root.querySelectorAll<HTMLButtonElement>("#patch-detail button")].find((b) => b.textContent === "Choose a version to restore")!.click();
    await flush();
    const select = root.querySelector<HTMLSelectElement>("#rollback-version")!;
    expect([...select.options].map((o) => `${o.value}${o.disabled ? " (off)" : ""}`)).toEqual(["3 (off)", "2", "1"]);
    expect(select.value).toBe("2");
    expect(select.options[0]!.textContent).toContain("(current)");
    expect(select.options[1]!.textContent).toContain("good one");
    (root.querySelector("#rollback-why") as HTMLInputElement).value = "v3 misroutes";
    const rollBack = [...root.querySelectorAll<HTMLButtonElement>("form.rollback button")].find((b) => b.textContent === "Roll back")!;
    rollBack.click();
    await flush();
    expect(calls).toContain(`POST /v1/config/propose_patch {"artifact_id":"${ART}","restore_version":2,"justification":"v3 misroutes"}`);
    expect(root.querySelector("#rollback-status")?.textContent).toBe("Proposed patch #8 (pending) to restore v2.");
    expect(rows()[0]!.dataset.patchId).toBe("8");
    expect(rows()[0]!.textContent).toContain("restores v2");
    expect(root.querySelector("#patch-detail h3")?.textContent).toContain("Patch #8");

    // An invalid patch: its problems, as text; no decision buttons.
    show(6);
    await flush();
    expect(root.querySelector("#patch-detail .problems")?.textContent).toBe("/rules/1/when: unknown name");
    expect(root.querySelector("#patch-detail")?.textContent).toContain("No dry-run");
    expect([...root.querySelectorAll("#patch-detail button")].map((b) => b.textContent)).not.toContain("Approve");
    expect(root.querySelector("b")).toBeNull();

    // The filter.
    const filter = root.querySelector<HTMLSelectElement>("#patch-status")!;
    filter.value = "rejected";
    filter.dispatchEvent(new Event("change"));
    await flush();
    expect(calls.at(-1)).toBe("GET /v1/config/patches?limit=30&status=rejected");
    expect(root.querySelector("#patches-status")?.textContent).toBe("No patches.");
    stop();
    root.remove();
  });

  it("rejects with a reason, shows a new artifact's schema, and says when the change cannot be shown", async () => {
    const calls: string[] = [];
    const create = patch(9, { artifact_id: null, kind: "adapter.lora", new_name: "cooking", new_visibility: "global", base_version: null, proposer: "system_llm", proposed_by: null,
      patch: [{ op: "add", path: "/name", value: "cooking" }, { op: "add", path: "/cluster_id", value: "c-1" }], dry_run: { skipped: "a new artifact has no traffic to replay" } });
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      calls.push(`${init.method ?? "GET"} ${input}${init.body ? ` ${String(init.body)}` : ""}`);
      if (input.startsWith("/v1/config/patches?")) return ok({ items: [create], next_cursor: null });
      if (input === "/v1/config/patches/9") return ok(create);
      if (input === "/v1/config/patches/9/decide") return ok({ ...create, status: "rejected", decision_reason: "not yet" });
      if (input === "/v1/config/patches/9/preview") return ok({ patch_id: 9, base_version: null, before: { kind: "adapter.lora" }, after: { kind: "adapter.lora", name: "cooking", cluster_id: "c-1" }, problems: [] });
      if (input === "/v1/config/patches/4") return ok(patch(4, { owner_user_id: ADMIN }));
      if (input === "/v1/config/patches/4/preview") return fail(503, "unavailable", "the database is away");
      return fail(404, "not_found", `unexpected ${input}`);
    }));
    const { root, show } = configOpsSection();
    document.body.append(root);
    await flush();
    show(9);
    await flush();
    const detail = root.querySelector("#patch-detail")!;
    expect(detail.textContent).toContain("new adapter.lora “cooking” (global)");
    expect(detail.textContent).toContain("the system (model)");
    expect(detail.textContent).toContain("Not replayed: a new artifact has no traffic to replay.");
    expect([...detail.querySelectorAll(".diff-line.added")].map((l) => l.textContent).join("")).toContain('"cluster_id": "c-1"');
    expect(detail.querySelector("pre.diff")?.getAttribute("aria-label")).toBe("The new artifact's schema");
    expect([...detail.querySelectorAll("button")].map((b) => b.textContent)).not.toContain("Choose a version to restore");
    (detail.querySelector("#patch-reason") as HTMLInputElement).value = "not yet";
    [...detail.querySelectorAll<HTMLButtonElement>("button")].find((b) => b.textContent === "Reject")!.click();
    await flush();
    expect(calls).toContain('POST /v1/config/patches/9/decide {"decision":"reject","reason":"not yet"}');
    expect(root.querySelector("#patch-action")?.textContent).toBe("Patch #9 is rejected.");
    expect(root.querySelector('#patch-list tr[data-patch-id="9"]')?.getAttribute("data-patch-status")).toBe("rejected");

    show(4);
    await flush();
    expect(root.querySelector("#patch-detail")?.textContent).toContain("Could not show what it changes (the database is away");
    expect(root.querySelector("#patch-detail")?.textContent).toContain("/rules/-"); // the operations still shown
    root.remove();
  });

  it("says why a decision was refused", async () => {
    vi.stubGlobal("fetch", vi.fn(async (input: string) => {
      if (input.startsWith("/v1/config/patches?")) return ok({ items: [], next_cursor: null });
      if (input.endsWith("/decide")) return fail(409, "conflict", "the patch is approved, not pending");
      if (input === "/v1/config/patches/7") return ok(patch(7));
      return ok({ artifact_id: ART, version: 2, schema: BASE, created_by: "user", change_note: null, created_at: T });
    }));
    const { root, show } = configOpsSection();
    show(7);
    await flush();
    (root.querySelector("#patch-reason") as HTMLInputElement).value = "ok";
    [...root.querySelectorAll<HTMLButtonElement>("#patch-detail button")].find((b) => b.textContent === "Approve")!.click();
    await flush();
    expect(root.querySelector("#patch-action")?.textContent).toBe("Could not approve patch #7: the patch is approved, not pending");
  });
});

const cluster = (id: string, over: Record<string, unknown> = {}) => ({
  id, scope: "global", label: "Cooking", description: "Questions about recipes.", labeled_by: "model",
  keywords: ["egg", "boil", "recipe"], size: 120, positive_count: 90, negative_count: 10,
  created_at: T, updated_at: T, user_id: null, ...over,
});
const SKILL = {
  id: "sk-1", name: "cooking-skill", description: null, adapter_type: "skill", mode: "local", visibility: "global",
  owner: "global", version: 1, latest_version: 1, version_count: 1, has_weights: true, base_model: "m",
  router: { usage_count: 4, success_score: null, last_used_at: null, last_trained_at: null },
  created_at: T, updated_at: T, owner_user_id: null, owner_email: null,
  status: "active", merged_into: null, cluster_id: "c-1", cluster_label: "Cooking",
};

describe("admin clusters and skill adapters", () => {
  it("words clusters", () => {
    expect(clusterName(cluster("c") as never)).toBe("Cooking");
    expect(clusterName(cluster("c", { label: null }) as never)).toBe("egg, boil, recipe");
    expect(clusterName(cluster("c0123456789", { label: " ", keywords: [] }) as never)).toBe("cluster c0123456");
    expect(sizeText(cluster("c") as never)).toBe("120 events · 90 up, 10 down");
  });

  it("lists clusters, runs clustering and shows skill adapters with their clusters", async () => {
    const calls: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (input: string, init: RequestInit = {}) => {
      calls.push(`${init.method ?? "GET"} ${input}${init.body ? ` ${String(init.body)}` : ""}`);
      if (input.startsWith("/v1/admin/clusters?")) {
        if (input.includes("scope=user")) return ok({ items: [cluster("c-2", { scope: "user", user_id: ADMIN, label: null })], next_cursor: null });
        return ok({ items: [cluster("c-1")], next_cursor: "k1" });
      }
      if (input === "/v1/admin/clusters/run") return ok({ queued: 3 }, 202);
      if (input.startsWith("/v1/admin/adapters?")) return ok({ items: [SKILL], next_cursor: null });
      return fail(404, "not_found", `unexpected ${input}`);
    }));
    const root = clustersSection({ rereadMs: 0 });
    document.body.append(root);
    await flush();
    expect(calls).toContain("GET /v1/admin/clusters?limit=50");
    expect(calls).toContain("GET /v1/admin/adapters?type=skill&limit=50");
    const row = root.querySelector<HTMLTableRowElement>('tr[data-cluster-id="c-1"]')!;
    expect(row.textContent).toContain("Cooking");
    expect(row.textContent).toContain("Questions about recipes.");
    expect(row.textContent).toContain("labelled by the model");
    expect(row.textContent).toContain("egg, boil, recipe");
    expect([...row.cells].slice(3, 6).map((c) => c.textContent)).toEqual(["120", "90", "10"]);
    expect(root.querySelector("#clusters-status")?.textContent).toBe("1 cluster shown; more are older.");
    const skill = root.querySelector('#skill-adapters tr[data-adapter-id="sk-1"]')!;
    expect(skill.textContent).toContain("cooking-skill");
    expect(skill.textContent).toContain("Cooking (global, 120)");
    expect(skill.textContent).toContain("4×");

    const run = [...root.querySelectorAll("button")].find((b) => b.textContent === "Run clustering now")!;
    run.click();
    await flush();
    expect(calls).toContain('POST /v1/admin/clusters/run {"scope":"all"}');
    expect(root.querySelector(".status")?.textContent).toBe("Queued 3 clustering runs; the clusters below are read again shortly.");

    const scope = root.querySelector<HTMLSelectElement>("#cluster-scope")!;
    scope.value = "user";
    scope.dispatchEvent(new Event("change"));
    await flush();
    expect(calls.at(-1)).toBe("GET /v1/admin/clusters?limit=50&scope=user");
    const mine = root.querySelector<HTMLTableRowElement>('tr[data-cluster-id="c-2"]')!;
    expect(mine.textContent).toContain("11111111");
    expect(mine.dataset.scope).toBe("user");
    root.remove();
  });

  it("says plainly when there are no skill adapters or clusters yet", async () => {
    vi.stubGlobal("fetch", vi.fn(async (input: string) => {
      if (input.startsWith("/v1/admin/clusters?")) return ok({ items: [], next_cursor: null });
      if (input === "/v1/admin/clusters/run") return fail(403, "forbidden", "admins only");
      return ok({ items: [], next_cursor: null });
    }));
    const root = clustersSection();
    await flush();
    expect(root.querySelector("#skills-none")?.textContent).toMatch(/^None yet\./);
    expect(root.querySelector("#clusters-status")?.textContent).toBe("No clusters yet: they form from feedback when clustering runs.");
    [...root.querySelectorAll("button")].find((b) => b.textContent === "Run clustering now")!.click();
    await flush();
    expect(root.querySelector(".status")?.textContent).toBe("Could not queue clustering: admins only");
  });
});
