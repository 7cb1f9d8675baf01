// Training across all users (the job counts by status from GET /v1/admin/metrics, Prometheus
// text) and an adapter's versions with the admin actions: rollback (serve any version), approve
// (serve a candidate), discard (a version that is not served).
import { type AdapterDetail, call, type Discarded, get, type PointerMove } from "./api";
import { h, message, replace, section, table, td } from "./dom";

/** `training_jobs{status="…"} N` lines of the metrics text, as {status: N}. */
export function jobCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^training_jobs\{status="([a-z_]+)"\}\s+([0-9.eE+-]+)\s*$/gm)) {
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A gauge without labels (`training_job_last_loss 0.41`); null when absent or NaN. */
export function gauge(text: string, name: string): number | null {
  const m = new RegExp(`^${name}\\s+([0-9.eE+-]+|NaN)\\s*$`, "m").exec(text);
  const v = m ? Number(m[1]) : NaN;
  return Number.isFinite(v) ? v : null;
}

export function trainingSection(fetcher: typeof fetch = (i, init) => globalThis.fetch(i, init)): HTMLElement {
  const { root, body, status } = section("training", "Training jobs (all users)");
  const load = () => {
    status.textContent = "Reading the training metrics…";
    fetcher("/v1/admin/metrics", { credentials: "same-origin", headers: { Accept: "text/plain" } })
      .then(async (r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const text = await r.text();
        const counts = jobCounts(text);
        const loss = gauge(text, "training_job_last_loss");
        const finished = gauge(text, "training_job_last_finished_timestamp_seconds");
        status.textContent = `Last loss: ${loss ?? "—"} · last finished: ${finished ? new Date(finished * 1000).toISOString() : "—"}`;
        replace(body,
          table(["Status", "Jobs"], Object.entries(counts).map(([s, n]) => h("tr", {}, td(s), td(n))), "Training jobs by status"),
          h("p", { class: "muted" }, "A list of every user's jobs: not available yet (no admin route lists them); each user sees their own under “Your model”."),
          h("button", { type: "button", onclick: load }, "Refresh"));
      })
      .catch((e: unknown) => {
        status.textContent = `Could not read the training metrics: ${message(e)}`;
      });
  };
  load();
  return root;
}

export function adaptersSection(): HTMLElement {
  const { root, body, status } = section("adapters", "Adapter versions");
  const idInput = h("input", { id: "adapter-id", required: true, placeholder: "adapter id" });
  const note = h("input", { id: "adapter-note", maxlength: 500, placeholder: "why (kept in the audit log)" });
  const versions = h("div");
  const manualVersion = h("input", { id: "adapter-version", type: "number", min: 1 });

  const act = (kind: "rollback" | "approve" | "discard", version: number) => {
    const id = idInput.value.trim();
    const path = `/v1/admin/adapters/${encodeURIComponent(id)}`;
    status.textContent = `${kind} v${version}…`;
    const done =
      kind === "rollback" ? call<PointerMove>("POST", `${path}/rollback`, { version, note: note.value.trim() || null })
        : kind === "approve" ? call<PointerMove>("POST", `${path}/versions/${version}/approve`)
          : call<Discarded>("DELETE", `${path}/versions/${version}`);
    done
      .then((r) => {
        status.textContent = "moved" in r
          ? (r.moved ? `Now serving v${r.version} (was v${r.previous_version}).` : `v${r.version} was already served.`)
          : `v${r.version} discarded.`;
        loadVersions();
      })
      .catch((e: unknown) => {
        status.textContent = `${kind} v${version} failed: ${message(e)}`;
      });
  };

  const loadVersions = () => {
    const id = idInput.value.trim();
    if (!id) return;
    get<AdapterDetail>(`/v1/adapters/${encodeURIComponent(id)}?limit=50`)
      .then((d) => {
        const rows = d.versions.items.map((v) => h("tr", { "data-version": v.version },
          td(`v${v.version}`),
          td(v.served ? "served" : v.candidate ? "candidate" : v.promoted === false ? "not promoted" : "kept"),
          td(v.has_weights ? "weights" : "prompt only"),
          td(v.created_at),
          td(
            v.served ? null : h("button", { type: "button", onclick: () => act("rollback", v.version) }, `Serve v${v.version}`),
            v.candidate ? h("button", { type: "button", onclick: () => act("approve", v.version) }, `Approve v${v.version}`) : null,
            v.served ? null : h("button", { type: "button", class: "danger", onclick: () => act("discard", v.version) }, `Discard v${v.version}`),
          )));
        replace(versions, h("p", {}, `${d.name} (${d.adapter_type}), serving v${d.version}`), table(["Version", "State", "Kind", "Created", "Actions"], rows));
      })
      .catch((e: unknown) => {
        replace(versions, h("p", { class: "muted" },
          `The versions cannot be listed here (${message(e)}): another user's private adapter is not readable; act on a version by number below.`));
      });
  };

  const form = h("form", { class: "row" }, h("label", { for: "adapter-id" }, "Adapter"), idInput,
    h("label", { for: "adapter-note" }, "Note"), note, h("button", { type: "submit" }, "Show versions"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    loadVersions();
  });
  const byNumber = h("div", { class: "row" }, h("label", { for: "adapter-version" }, "Version"), manualVersion,
    ...(["rollback", "approve", "discard"] as const).map((k) =>
      h("button", { type: "button", onclick: () => { const v = Number(manualVersion.value); if (v > 0 && idInput.value.trim()) act(k, v); } },
        k === "rollback" ? "Serve" : k === "approve" ? "Approve" : "Discard")));
  replace(body, form, versions, byNumber);
  return root;
}
