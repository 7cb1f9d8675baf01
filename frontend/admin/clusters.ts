// Clusters of feedback (functions/cluster): every live cluster, global and per user (GET
// /v1/admin/clusters by scope and owner, paged) with its label, keywords, size,
// positive/negative counts and owner; "Run clustering now" (POST /v1/admin/clusters/run: queues
// the due runs, which the cluster function does in the background); and the skill adapters
// (skills.ts) with the cluster each serves.
import { type AdminCluster, type AdminClusterPage, call, get, qs, type RunQueued } from "./api";
import { h, message, pagedRows, replace, section, table, td, when } from "./dom";
import { skillsPanel } from "./skills";

const PAGE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A cluster's name: its label, else its first keywords, else its id. */
export function clusterName(c: Pick<AdminCluster, "label" | "keywords" | "id">): string {
  return c.label?.trim() || (c.keywords.length ? c.keywords.slice(0, 3).join(", ") : `cluster ${c.id.slice(0, 8)}`);
}

/** `12 events · 9 up, 2 down` */
export function sizeText(c: Pick<AdminCluster, "size" | "positive_count" | "negative_count">): string {
  return `${c.size} event${c.size === 1 ? "" : "s"} · ${c.positive_count} up, ${c.negative_count} down`;
}

export interface ClustersOptions {
  /** After "Run clustering now", the list is read again after this many ms (0: not). */
  rereadMs?: number;
}

export function clustersSection(options: ClustersOptions = {}): HTMLElement {
  const rereadMs = options.rereadMs ?? 5000;
  const { root, body, status } = section("clusters", "Clusters and skill adapters");
  const scope = h("select", { id: "cluster-scope" },
    h("option", { value: "" }, "any"), h("option", { value: "global" }, "global"), h("option", { value: "user" }, "user"));
  const owner = h("input", { id: "cluster-owner", placeholder: "owner's user id", size: 36 });
  const listStatus = h("p", { class: "status", id: "clusters-status", role: "status" });
  const tbody = h("tbody", { id: "cluster-list" });
  const more = h("button", { type: "button", id: "more-clusters", disabled: true }, "More clusters");
  const runButton = h("button", { type: "button", id: "run-clustering" }, "Run clustering now");
  const known = new Map<string, AdminCluster>(); // every cluster listed so far, by id
  const skills = skillsPanel({ known });

  const clusterRow = (c: AdminCluster): HTMLTableRowElement =>
    h("tr", { "data-cluster-id": c.id, "data-scope": c.scope },
      td(clusterName(c), c.description ? h("div", { class: "muted" }, c.description) : null,
        c.labeled_by ? h("div", { class: "muted" }, `labelled by ${c.labeled_by === "model" ? "the model" : "keywords"}`) : null),
      td(c.scope, c.user_id ? h("div", { class: "muted", title: c.user_id }, c.owner_email ?? h("code", {}, c.user_id.slice(0, 8))) : null),
      td(c.keywords.join(", ")),
      td(c.size),
      td(c.positive_count),
      td(c.negative_count),
      td(when(c.updated_at)));

  const listPage = pagedRows<AdminCluster>({
    tbody, more, status: listStatus, what: "clusters", row: clusterRow,
    fetch: (cursor) => get<AdminClusterPage>(`/v1/admin/clusters${qs({ limit: PAGE, cursor, scope: scope.value, user_id: owner.value.trim() })}`),
    shown: (n, older) => (n === 0
      ? "No clusters yet: they form from feedback when clustering runs."
      : `${n} cluster${n === 1 ? "" : "s"} shown${older ? "; more are older" : ""}.`),
    loaded: (items) => {
      for (const c of items) known.set(c.id, c);
      skills.clustersKnown(known);
    },
  });
  const loadList = (reset: boolean) => {
    const ownerId = owner.value.trim();
    if (ownerId && !UUID.test(ownerId)) {
      listStatus.textContent = "The owner must be a user id (a UUID).";
      return;
    }
    listPage(reset);
  };

  runButton.addEventListener("click", () => {
    runButton.disabled = true;
    status.textContent = "Queueing clustering runs…";
    call<RunQueued>("POST", "/v1/admin/clusters/run", { scope: "all" })
      .then((r) => {
        status.textContent = r.queued === 0
          ? "Nothing to run: no user has new feedback since the last run (the global run is queued hourly)."
          : `Queued ${r.queued} clustering run${r.queued === 1 ? "" : "s"}; the clusters below are read again shortly.`;
        if (r.queued > 0 && rereadMs > 0) {
          setTimeout(() => {
            loadList(true);
            skills.load();
          }, rereadMs);
        }
      })
      .catch((e: unknown) => {
        status.textContent = `Could not queue clustering: ${message(e)}`;
      })
      .finally(() => {
        runButton.disabled = false;
      });
  });

  const filters = h("form", { class: "row" },
    h("label", { for: "cluster-scope" }, "Scope"), scope,
    h("label", { for: "cluster-owner" }, "Cluster owner"), owner,
    h("button", { type: "submit" }, "List clusters"), runButton);
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    loadList(true);
  });
  scope.addEventListener("change", () => loadList(true));
  more.addEventListener("click", () => loadList(false));
  const list = table(["Label", "Scope and owner", "Keywords", "Size", "Positive", "Negative", "Updated"], [], "Live clusters, most recently changed first");
  list.querySelector("tbody")!.replaceWith(tbody);
  replace(body, filters, listStatus, h("div", { class: "scroll" }, list), more, skills.root);
  loadList(true);
  skills.load();
  return root;
}
