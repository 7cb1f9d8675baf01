// The admin console (served only to admins under /admin/): the stack's health, users, the audit
// log with its chain check, every user's training jobs, and every user's adapters with their
// versions; the ConfigOps patch queue's place. Self-contained on purpose: nothing here is shared with the app's bundle (see
// vite.config.ts and scripts/check-dist.mjs).
import "./admin.css";
import { adaptersSection } from "./adapters";
import { auditSection } from "./audit";
import { h, section } from "./dom";
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
  main.append(healthSection(), usersSection(), auditSection(), trainingSection({ openAdapter }), adapters.root, configOpsSection());
}

/** The ConfigOps patch queue's place: its API (propose, validate, approve, apply) is not built. */
function configOpsSection(): HTMLElement {
  const { root, body } = section("configops", "ConfigOps patches");
  body.append(h("p", { class: "muted" }, "Not available yet: behaviour changes through reviewed patches (propose → validate → approve → apply) come with the ConfigOps API."));
  return root;
}
