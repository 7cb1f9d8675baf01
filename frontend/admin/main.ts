// The admin console (served only to admins under /admin/): the stack's health, users, the audit
// log with its chain check, training jobs and adapter versions. Self-contained on purpose:
// nothing here is shared with the app's bundle (see vite.config.ts and scripts/check-dist.mjs).
import "./admin.css";
import { auditSection } from "./audit";
import { healthSection } from "./health";
import { adaptersSection, trainingSection } from "./training";
import { usersSection } from "./users";

const main = document.getElementById("console");
if (main) main.append(healthSection(), usersSection(), auditSection(), trainingSection(), adaptersSection());
