// ConfigOps patches (functions/config): the queue (GET /v1/config/patches by status and artifact,
// paged), one patch in full (its artifact, proposer, justification, validation problems, the
// diff of the artifact before and after its operations, the stored dry-run), and the admin's
// actions: Approve / Reject with a reason (POST …/decide), Apply an approved patch (POST …/apply:
// the patch is `applying` until the queue function has written the version, so it is read
// again until it is not), and Roll back (a patch that restores an earlier version: POST
// /v1/config/propose_patch {artifact_id, restore_version}, validated and dry-run like any).
import {
  type Artifact,
  type ArtifactVersionPage,
  call,
  get,
  type Patch,
  type PatchPage,
  type PatchPreview,
  type PatchStatus,
  qs,
} from "./api";
import { h, message, pagedRows, replace, section, table, td, when } from "./dom";
import { lineDiff, type Op, pretty } from "./patchdiff";

export const PATCH_STATUSES: readonly PatchStatus[] = ["pending", "approved", "rejected", "applying", "applied", "failed"];
/** How often a patch being applied is read again. */
export const POLL_MS = 1500;
const PAGE = 30;
const VERSIONS = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const short = (id: string | null | undefined): string => (id ? id.slice(0, 8) : "");

/** What a patch targets, in words: `workflow.chat 1a2b3c4d (from v3)`, or the artifact it creates. */
export function targetText(p: Patch): string {
  if (!p.artifact_id) return `new ${p.kind ?? "artifact"} “${p.new_name ?? "?"}”${p.new_visibility ? ` (${p.new_visibility})` : ""}`;
  return `${p.kind ?? "artifact"} ${short(p.artifact_id)}${p.base_version != null ? ` (from v${p.base_version})` : ""}`;
}

/** Who proposed it: the system's model, an admin or a user (by id). */
export function proposerText(p: Patch): string {
  const who = p.proposed_by ? ` ${short(p.proposed_by)}` : "";
  if (p.proposer === "system_llm") return "the system (model)";
  if (p.proposer === "human_admin") return `admin${who}`;
  return `${p.proposer}${who}`;
}

export interface Problem {
  path: string;
  message: string;
}

/** The validation's problems (`{path, message}`), whatever the stored shape holds. */
export function problemsOf(validation: Patch["validation"]): Problem[] {
  const list = isDict(validation) && Array.isArray(validation.problems) ? validation.problems : [];
  return list.map((p) => {
    if (!isDict(p)) return { path: "", message: String(p) };
    const path = Array.isArray(p.path) ? p.path.join("/") : typeof p.path === "string" ? p.path : "";
    return { path, message: typeof p.message === "string" ? p.message : JSON.stringify(p) };
  });
}

/** The dry-run in one line: `3 of 40 replayed turns change · 2 skipped · 40 reproduced`. */
export function dryRunHeadline(d: Patch["dry_run"]): string {
  if (!isDict(d)) return "No dry-run (the patch was not valid, so nothing was replayed).";
  if (typeof d.skipped === "string") return `Not replayed: ${d.skipped}${typeof d.error === "string" ? ` (${d.error})` : ""}.`;
  const replayed = num(d.replayed) ?? 0;
  const parts = [`${num(d.changed) ?? 0} of ${replayed} replayed turn${replayed === 1 ? "" : "s"} change`];
  const skipped = isDict(d.skipped) ? num(d.skipped.total) : null;
  if (skipped) parts.push(`${skipped} skipped`);
  if (num(d.undetermined)) parts.push(`${num(d.undetermined)} undetermined`);
  if (num(d.reproduced) != null) parts.push(`${num(d.reproduced)} of ${replayed} reproduce what the turn did`);
  return parts.join(" · ");
}

const countTable = (data: unknown, headers: [string, string, string], keys: [string, string], caption: string): HTMLElement | null => {
  if (!isDict(data) || Object.keys(data).length === 0) return null;
  const rows = Object.entries(data).map(([name, v]) => {
    const c = isDict(v) ? v : {};
    return h("tr", { "data-name": name }, td(h("code", {}, name)), td(num(c[keys[0]]) ?? 0), td(num(c[keys[1]]) ?? 0));
  });
  return h("div", { class: "scroll" }, table(headers, rows, caption));
};

const reasons = (data: unknown, title: string): HTMLElement | null => {
  if (!isDict(data) || Object.keys(data).length === 0) return null;
  return h("div", {}, h("p", { class: "muted" }, title),
    h("ul", {}, ...Object.entries(data).map(([why, n]) => h("li", {}, `${String(n)} × ${why}`))));
};

const choice = (v: unknown): string => {
  if (!Array.isArray(v)) return "—";
  if (v.length === 0) return "no adapter";
  return v.map((a) => (isDict(a) ? `${String(a.id)}${num(a.weight) != null ? ` × ${num(a.weight)}` : ""}` : String(a))).join(", ");
};
const path = (v: unknown): string => {
  if (!isDict(v)) return "—";
  const nodes = Array.isArray(v.nodes) ? v.nodes.map(String).join(" → ") : "";
  return `${nodes || "(none)"} [${String(v.end ?? "?")}]${typeof v.reason === "string" ? ` ${v.reason}` : ""}`;
};

/** The stored dry-run: counts, rules and adapters (routing) or nodes (workflow), examples. */
export function dryRunView(d: Patch["dry_run"]): HTMLElement {
  const root = h("div", { class: "dry-run", "aria-label": "Dry-run result" }, h("p", { class: "dry-run-headline" }, dryRunHeadline(d)));
  if (!isDict(d) || typeof d.skipped === "string") return root;
  const facts: string[] = [];
  if (typeof d.kind === "string") facts.push(d.kind);
  if (num(d.selected) != null) facts.push(`${num(d.selected)} recent turns selected (sample ${num(d.sample) ?? "?"}, ${String(d.scope ?? "")})`);
  if (num(d.unchanged) != null) facts.push(`${num(d.unchanged)} unchanged`);
  if (num(d.adapters_changed) != null) facts.push(`${num(d.adapters_changed)} with other adapters, ${num(d.weights_only_changed) ?? 0} with other weights only`);
  if (num(d.adapters_gained) != null) facts.push(`adapters gained ${num(d.adapters_gained)}, lost ${num(d.adapters_lost) ?? 0}`);
  if (num(d.candidates_gone)) facts.push(`${num(d.candidates_gone)} candidate adapters gone since`);
  if (num(d.elapsed_ms) != null) facts.push(`${num(d.elapsed_ms)} ms`);
  root.append(h("p", { class: "muted" }, facts.join(" · ")));
  const ends = isDict(d.ends) ? d.ends : null;
  const endText = (side: string) => (ends && isDict(ends[side]) ? Object.entries(ends[side]).map(([e, n]) => `${e} ${String(n)}`).join(", ") : "");
  const parts = [
    countTable(d.rules, ["Rule", "Fired before", "Fired after"], ["before", "after"], "Rules fired (turns)"),
    countTable(d.adapters, ["Adapter", "Gained", "Lost"], ["gained", "lost"], "Adapters gained and lost (turns)"),
    countTable(d.nodes, ["Node", "Visits before", "Visits after"], ["before", "after"], "Workflow nodes visited (turns)"),
    ends ? h("p", {}, `Ends before: ${endText("before") || "—"} · after: ${endText("after") || "—"}`) : null,
    reasons(isDict(d.skipped) ? d.skipped.reasons : null, "Skipped turns:"),
    reasons(d.undetermined_reasons, "Undetermined turns:"),
  ];
  for (const p of parts) if (p) root.append(p);
  const examples = Array.isArray(d.examples) ? d.examples.filter(isDict) : [];
  if (examples.length > 0) {
    root.append(h("p", { class: "muted" }, "Example turns that change:"),
      h("ul", { class: "examples" }, ...examples.map((e) => {
        const routing = Array.isArray(e.before) || Array.isArray(e.after);
        const flipped = Array.isArray(e.rules_flipped) && e.rules_flipped.length ? ` · rules flipped: ${e.rules_flipped.map(String).join(", ")}` : "";
        return h("li", {}, h("code", {}, `message ${String(e.message_id ?? "?")}`), ": ",
          routing ? `${choice(e.before)} → ${choice(e.after)}${flipped}` : `${path(e.before)} → ${path(e.after)}`);
      })));
  }
  root.append(h("details", {}, h("summary", {}, "Dry-run JSON"), h("pre", {}, pretty(d))));
  return root;
}

/** The operations as a table: op, path, value or from. */
export function opsTable(ops: readonly Op[]): HTMLElement {
  return h("div", { class: "scroll" }, table(["Op", "Path", "Value"], ops.map((o) =>
    h("tr", {}, td(String(o.op ?? "?")), td(h("code", {}, String(o.path ?? ""))),
      td(h("code", {}, "from" in o ? `from ${String(o.from)}` : "value" in o ? JSON.stringify(o.value) : "")))), "JSON Patch operations"));
}

/** A line diff of the pretty-printed JSON before and after, marked by class and sign. */
export function diffView(before: unknown, after: unknown, label: string): HTMLElement {
  const lines = lineDiff(pretty(before), pretty(after));
  if (lines === null) return h("p", { class: "muted" }, "Too large to diff here: see the operations.");
  const added = lines.filter((l) => l.op === "added").length;
  const removed = lines.filter((l) => l.op === "removed").length;
  const sign = { same: " ", added: "+", removed: "-" } as const;
  return h("div", {},
    h("p", { class: "muted" }, `${label}: ${added} line${added === 1 ? "" : "s"} added, ${removed} removed`),
    h("pre", { class: "diff", "aria-label": label },
      ...lines.map((l) => h("span", { class: `diff-line ${l.op}` }, `${sign[l.op]} ${l.text}\n`))),
    h("details", {}, h("summary", {}, "Before and after, side by side"),
      h("div", { class: "side-by-side" },
        h("div", {}, h("h4", {}, "Before"), h("pre", {}, pretty(before))),
        h("div", {}, h("h4", {}, "After"), h("pre", {}, pretty(after))))));
}

export interface ConfigOpsOptions {
  /** How often a patch being applied is read again (tests shorten it). */
  pollMs?: number;
}

export interface ConfigOpsPanel {
  root: HTMLElement;
  /** Shows one patch in full. */
  show: (id: number) => void;
  /** Stops polling (a test, or a page being left). */
  stop: () => void;
}

export function configOpsSection(options: ConfigOpsOptions = {}): ConfigOpsPanel {
  const pollMs = options.pollMs ?? POLL_MS;
  const { root, body } = section("configops", "ConfigOps patches");
  const statusFilter = h("select", { id: "patch-status" },
    h("option", { value: "" }, "any"), ...PATCH_STATUSES.map((s) => h("option", { value: s }, s)));
  const artifactFilter = h("input", { id: "patch-artifact", placeholder: "artifact id", size: 36 });
  const listStatus = h("p", { class: "status", id: "patches-status", role: "status" });
  const tbody = h("tbody", { id: "patch-list" });
  const more = h("button", { type: "button", id: "more-patches", disabled: true }, "More patches");
  const detail = h("div", { id: "patch-detail" });
  const actionStatus = h("p", { class: "status", id: "patch-action", role: "status" });
  let shown: number | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;

  const stopPolling = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };

  // --- the queue -------------------------------------------------------------------------------
  const patchRow = (p: Patch): HTMLTableRowElement =>
    h("tr", { "data-patch-id": p.id, "data-patch-status": p.status, class: p.id === shown ? "chosen" : null },
      td(`#${p.id}`),
      td(targetText(p), p.meta && num((p.meta as Dict).restores_version) != null ? h("div", { class: "muted" }, `restores v${num((p.meta as Dict).restores_version)}`) : null),
      td(proposerText(p)),
      td(h("span", { class: `badge ${p.status}` }, p.status)),
      td(p.justification ?? ""),
      td(when(p.created_at)),
      td(h("button", { type: "button", onclick: () => show(p.id), "aria-label": `Review patch ${p.id}` }, "Review")));

  const updateRow = (p: Patch) => {
    const row = tbody.querySelector(`tr[data-patch-id="${p.id}"]`);
    if (row) row.replaceWith(patchRow(p));
  };

  const listPage = pagedRows<Patch>({
    tbody, more, status: listStatus, what: "patches", row: patchRow,
    fetch: (cursor) => get<PatchPage>(`/v1/config/patches${qs({ limit: PAGE, cursor, status: statusFilter.value, artifact_id: artifactFilter.value.trim() })}`),
    shown: (n, older) => (n === 0 ? "No patches." : `${n} patch${n === 1 ? "" : "es"} shown${older ? "; more are older" : ""}.`),
  });
  const loadList = (reset: boolean) => {
    const artifact = artifactFilter.value.trim();
    if (artifact && !UUID.test(artifact)) {
      listStatus.textContent = "The artifact must be an artifact id (a UUID).";
      return;
    }
    listPage(reset);
  };

  // --- one patch ---------------------------------------------------------------------------------
  // The patch's effect comes from the server (GET …/preview): its base version is shown to
  // whoever may see the patch, even on another user's private artifact.
  const diffPart = (p: Patch): HTMLElement => {
    const out = h("div", { class: "patch-diff" }, h("h4", {}, "What it changes"));
    const ops = p.patch as Op[];
    const place = h("div", {}, h("p", { class: "muted" }, p.artifact_id ? `Reading v${p.base_version ?? "?"} of the artifact…` : "Reading the new artifact's schema…"));
    out.append(place, opsTable(ops));
    get<PatchPreview>(`/v1/config/patches/${p.id}/preview`)
      .then((view) => {
        const caption = p.artifact_id ? `Changes from v${view.base_version ?? "current"} to the patched schema` : "The new artifact's schema";
        replace(place, view.after != null
          ? diffView(view.before, view.after, caption)
          : h("p", { class: "muted" }, `The operations do not apply: ${view.problems.map((x) => String(x["message"] ?? "")).join("; ")}`));
      })
      .catch((e: unknown) => {
        replace(place, h("p", { class: "muted" }, `Could not show what it changes (${message(e)}): the operations are below.`));
      });
    return out;
  };

  const facts = (p: Patch): HTMLElement => {
    const rows: [string, string | Node][] = [
      ["Artifact", p.artifact_id ? h("code", {}, p.artifact_id) : targetText(p)],
      ["Kind", p.kind ?? "—"],
      ["Base version", p.base_version != null ? `v${p.base_version}` : "—"],
      ["Proposer", proposerText(p)],
      ["Justification", p.justification ?? "—"],
      ["Status", h("span", { class: `badge ${p.status}`, id: "patch-state" }, p.status)],
      ["Proposed", when(p.created_at)],
    ];
    if (p.owner_user_id) rows.push(["Owner", h("code", {}, p.owner_user_id)]);
    const restores = num((p.meta as Dict | null)?.restores_version);
    if (restores != null) rows.push(["Restores", `v${restores} (a rollback)`]);
    if (p.decided_by || p.decision_reason) rows.push(["Decision", `${p.decision_reason ?? ""}${p.decided_by ? ` (by ${short(p.decided_by)}, ${when(p.decided_at)})` : ""}`]);
    if (p.applied_version != null) rows.push(["Applied", `as v${p.applied_version}, ${when(p.applied_at)}`]);
    if (p.failure_reason) rows.push(["Failure", p.failure_reason]);
    return h("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  };

  const validationPart = (p: Patch): HTMLElement => {
    const problems = problemsOf(p.validation);
    const ok = isDict(p.validation) && p.validation.ok === true;
    return h("div", { class: "validation" }, h("h4", {}, "Validation"),
      problems.length === 0
        ? h("p", { class: ok ? "ok" : "muted" }, ok ? "Valid: it applies, fits the kind's schema and its references resolve." : "Not recorded.")
        : h("ul", { class: "problems", "aria-label": "Validation problems" }, ...problems.map((x) => h("li", {}, x.path ? h("code", {}, x.path) : null, x.path ? ": " : "", x.message))));
  };

  const actions = (p: Patch): HTMLElement => {
    const box = h("div", { class: "patch-actions" });
    if (p.status === "pending") {
      const reason = h("input", { id: "patch-reason", maxlength: 2000, required: true, placeholder: "why (kept with the patch and in the audit log)", size: 50 });
      const decide = (decision: "approve" | "reject") => {
        const why = reason.value.trim();
        if (!why) {
          actionStatus.textContent = "A reason is required to approve or reject.";
          reason.focus();
          return;
        }
        actionStatus.textContent = decision === "approve" ? "Approving…" : "Rejecting…";
        call<Patch>("POST", `/v1/config/patches/${p.id}/decide`, { decision, reason: why })
          .then((r) => {
            actionStatus.textContent = `Patch #${r.id} is ${r.status}.`;
            updateRow(r);
            render(r);
          })
          .catch((e: unknown) => {
            actionStatus.textContent = `Could not ${decision} patch #${p.id}: ${message(e)}`;
          });
      };
      box.append(h("div", { class: "row" },
        h("label", { for: "patch-reason" }, "Reason"), reason,
        h("button", { type: "button", onclick: () => decide("approve") }, "Approve"),
        h("button", { type: "button", class: "danger", onclick: () => decide("reject") }, "Reject")));
    }
    if (p.status === "approved") {
      box.append(h("div", { class: "row" }, h("button", { type: "button", onclick: () => applyIt(p) }, "Apply"),
        h("span", { class: "muted" }, "Writes the new version (re-checked against the current one first).")));
    }
    if (p.artifact_id) {
      const artifact = p.artifact_id;
      box.append(h("div", { class: "row" }, h("button", { type: "button", onclick: () => rollback.open(artifact) }, "Choose a version to restore")));
    }
    return box;
  };

  const applyIt = (p: Patch) => {
    actionStatus.textContent = `Applying patch #${p.id}…`;
    call<Patch>("POST", `/v1/config/patches/${p.id}/apply`)
      .then((r) => {
        updateRow(r);
        render(r);
      })
      .catch((e: unknown) => {
        actionStatus.textContent = `Could not apply patch #${p.id}: ${message(e)}`;
      });
  };

  const settled = (p: Patch) => {
    if (p.status === "applied") actionStatus.textContent = `Patch #${p.id} applied: the artifact is now at v${p.applied_version ?? "?"}.`;
    else if (p.status === "failed") actionStatus.textContent = `Patch #${p.id} failed: ${p.failure_reason ?? "no reason given"}.`;
  };

  const poll = (id: number) => {
    stopPolling();
    timer = setTimeout(() => {
      timer = null;
      get<Patch>(`/v1/config/patches/${id}`)
        .then((p) => {
          if (shown !== id) return;
          if (p.status === "applying") {
            poll(id);
            return;
          }
          updateRow(p);
          render(p);
          settled(p);
        })
        .catch((e: unknown) => {
          if (shown !== id) return;
          actionStatus.textContent = `Could not read patch #${id} (still trying): ${message(e)}`;
          poll(id);
        });
    }, pollMs);
  };

  const render = (p: Patch) => {
    stopPolling();
    shown = p.id;
    for (const row of tbody.querySelectorAll<HTMLTableRowElement>("tr[data-patch-id]")) {
      row.classList.toggle("chosen", row.dataset.patchId === String(p.id));
    }
    replace(detail,
      h("h3", {}, `Patch #${p.id}: ${targetText(p)} · ${p.status}`),
      facts(p), validationPart(p),
      h("div", {}, h("h4", {}, "Dry-run"), dryRunView(p.dry_run)),
      diffPart(p), actions(p));
    if (p.status === "applying") {
      actionStatus.textContent = `Patch #${p.id} is being applied…`;
      poll(p.id);
    }
  };

  const show = (id: number) => {
    stopPolling();
    shown = id;
    actionStatus.textContent = "";
    replace(detail, h("p", { class: "muted" }, `Reading patch #${id}…`));
    get<Patch>(`/v1/config/patches/${id}`)
      .then((p) => {
        if (shown === id) render(p);
      })
      .catch((e: unknown) => {
        if (shown === id) replace(detail, h("p", { class: "muted" }, `Could not read patch #${id}: ${message(e)}`));
      });
  };

  // --- rollback: a patch that restores an earlier version -----------------------------------------
  const rollback = (() => {
    const artifact = h("input", { id: "rollback-artifact", placeholder: "artifact id", size: 36 });
    const version = h("select", { id: "rollback-version", disabled: true });
    const why = h("input", { id: "rollback-why", maxlength: 2000, placeholder: "why restore it", size: 40 });
    const go = h("button", { type: "submit", disabled: true }, "Roll back");
    const state = h("p", { class: "status", id: "rollback-status", role: "status" });
    let loaded: string | null = null;
    const load = (id: string) => {
      loaded = null;
      go.disabled = true;
      version.disabled = true;
      version.replaceChildren();
      if (!UUID.test(id)) {
        state.textContent = "The artifact must be an artifact id (a UUID).";
        return;
      }
      state.textContent = "Reading the artifact's versions…";
      Promise.all([
        get<Artifact>(`/v1/artifacts/${encodeURIComponent(id)}`),
        get<ArtifactVersionPage>(`/v1/artifacts/${encodeURIComponent(id)}/versions${qs({ limit: VERSIONS })}`),
      ])
        .then(([a, page]) => {
          if (artifact.value.trim() !== id) return;
          const earlier = page.items.filter((v) => v.version !== a.version);
          for (const v of page.items) {
            const current = v.version === a.version;
            version.append(h("option", { value: v.version, disabled: current },
              `v${v.version}${current ? " (current)" : ""} · ${when(v.created_at)} · ${v.created_by}${v.change_note ? ` · ${v.change_note}` : ""}`));
          }
          if (earlier.length === 0) {
            state.textContent = `${a.name} (${a.type}) has no earlier version to restore.`;
            return;
          }
          version.value = String(earlier[0]!.version);
          version.disabled = false;
          go.disabled = false;
          loaded = id;
          state.textContent = `${a.name} (${a.type}) is at v${a.version}: choose the version to restore.`;
        })
        .catch((e: unknown) => {
          state.textContent = `Could not read the artifact's versions: ${message(e)}`;
        });
    };
    const form = h("form", { class: "rollback" },
      h("h3", {}, "Roll back an artifact"),
      h("p", { class: "muted" }, "Rolling back proposes a patch that restores the chosen version; it is validated, dry-run and decided like any other."),
      h("div", { class: "row" }, h("label", { for: "rollback-artifact" }, "Restore versions of"), artifact,
        h("button", { type: "button", onclick: () => load(artifact.value.trim()) }, "List versions")),
      h("div", { class: "row" }, h("label", { for: "rollback-version" }, "Version"), version,
        h("label", { for: "rollback-why" }, "Justification"), why, go),
      state);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const id = loaded;
      const restore = Number(version.value);
      if (!id || !Number.isInteger(restore) || restore < 1) return;
      go.disabled = true;
      state.textContent = `Proposing to restore v${restore}…`;
      call<Patch>("POST", "/v1/config/propose_patch", { artifact_id: id, restore_version: restore, justification: why.value.trim() || null })
        .then((p) => {
          state.textContent = p.status === "rejected"
            ? `Patch #${p.id} was rejected at once: ${problemsOf(p.validation).map((x) => x.message).join("; ") || p.decision_reason || "invalid"}.`
            : `Proposed patch #${p.id} (${p.status}) to restore v${restore}.`;
          tbody.prepend(patchRow(p));
          render(p);
        })
        .catch((e: unknown) => {
          state.textContent = `Could not propose the rollback: ${message(e)}`;
        })
        .finally(() => {
          go.disabled = loaded === null;
        });
    });
    return {
      form,
      open: (id: string) => {
        artifact.value = id;
        load(id);
        form.scrollIntoView?.({ block: "start" });
      },
    };
  })();

  // --- the filters ---------------------------------------------------------------------------------
  const filters = h("form", { class: "row" },
    h("label", { for: "patch-status" }, "Patch status"), statusFilter,
    h("label", { for: "patch-artifact" }, "Artifact"), artifactFilter,
    h("button", { type: "submit" }, "List patches"));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    loadList(true);
  });
  statusFilter.addEventListener("change", () => loadList(true));
  more.addEventListener("click", () => loadList(false));
  const list = table(["Patch", "Target", "Proposer", "Status", "Justification", "Proposed", ""], [], "Newest first");
  list.querySelector("tbody")!.replaceWith(tbody);
  replace(body, filters, listStatus, h("div", { class: "scroll" }, list), more, actionStatus, detail, rollback.form);
  loadList(true);
  return { root, show, stop: stopPolling };
}
