// The admin console (served only to admins under /admin/): the stack's health, users, the audit
// log with its chain check, every user's training jobs, and every user's adapters with their
// versions, the ConfigOps patch queue (diff, dry-run, decide, apply, roll back), the architect's runs, and the clusters
// with the skill adapters (status, usage, "Review skills now"). Self-contained on purpose: nothing here is shared with the app's bundle (see
// vite.config.ts and scripts/check-dist.mjs).
import "./admin.css";
import { adaptersSection } from "./adapters";
import { architectSection } from "./architect";
import { auditSection } from "./audit";
import { clustersSection } from "./clusters";
import { configOpsSection } from "./configops";
import { h } from "./dom";
import { healthSection } from "./health";
import { trainingSection } from "./training";
import { usersSection } from "./users";

const main = document.getElementById("console");
if (main) {
  const adapters = adaptersSection();
  const openAdapter = (id: string) => {
    adapters.show(id);
    adapters.root.scrollIntoView?.({ block: "start" });
  };
  main.append(healthSection(), usersSection(), auditSection(), trainingSection({ openAdapter }), adapters.root,
    configOpsSection().root, architectSection().root, clustersSection());
  // The newer sections in the page's navigation (before "Back to the app").
  const nav = document.querySelector("header nav");
  const back = nav?.querySelector('a[href="/"]') ?? null;
  for (const [id, text] of [["configops", "Patches"], ["architect", "Architect"], ["clusters", "Clusters"], ["skill-adapters", "Skills"]] as const) {
    if (nav && !nav.querySelector(`a[href="#${id}"]`)) nav.insertBefore(h("a", { href: `#${id}` }, text), back);
  }
}
