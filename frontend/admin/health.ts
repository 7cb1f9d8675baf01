// The stack's health (GET /healthz): each dependency up or down, with its latency.
import { get, type Health } from "./api";
import { h, message, replace, section, table, td } from "./dom";

export function healthSection(): HTMLElement {
  const { root, body, status } = section("health", "Stack health");
  const load = () => {
    status.textContent = "Checking…";
    get<Health>("/healthz")
      .then((r) => {
        status.textContent = `Overall: ${r.status}${r.version ? ` · version ${r.version}` : ""}${r.git_commit ? ` · ${r.git_commit.slice(0, 12)}` : ""}`;
        const rows = Object.entries(r.checks).map(([name, c]) =>
          h("tr", { "data-status": c.status }, td(name), td(h("span", { class: `badge ${c.status}` }, c.status)), td(`${c.latency_ms} ms`), td(c.error ?? "")));
        replace(body, table(["Check", "Status", "Latency", "Error"], rows), h("button", { type: "button", onclick: load }, "Check again"));
      })
      .catch((e: unknown) => {
        status.textContent = `Health check failed: ${message(e)}`;
      });
  };
  load();
  return root;
}
