// One context: its details, Rename and Delete context (for those who may change it), its files
// (attach, detach, ingestion), search, and a preview of its chunks.
import { useState } from "preact/hooks";
import type { ContextOut } from "../../api/types";
import { formatDate } from "../../lib/format";
import { canChange, refreshContext } from "../../state/contexts";
import { Badge } from "../common/Badge";
import { ContextFiles } from "./ContextFiles";
import { ContextSearch } from "./ContextSearch";
import { DeleteContext } from "./DeleteContext";
import { RecentChunks } from "./RecentChunks";
import { RenameContext } from "./RenameContext";

function num(stats: Record<string, unknown> | undefined, key: string): number {
  const value = stats?.[key];
  return typeof value === "number" ? value : 0;
}

export function statsLine(stats: Record<string, unknown> | undefined): string {
  const files = num(stats, "files");
  const chunks = num(stats, "chunks");
  const ingestion = (stats?.["ingestion"] ?? {}) as Record<string, unknown>;
  const busy = num(ingestion, "pending") + num(ingestion, "processing");
  const failed = num(ingestion, "failed");
  const parts = [`${files} file${files === 1 ? "" : "s"}`, `${chunks} passage${chunks === 1 ? "" : "s"} indexed`];
  if (busy) parts.push(`${busy} being indexed`);
  if (failed) parts.push(`${failed} failed`);
  return parts.join(", ");
}

export function ContextDetails({ context, onDeleted }: { context: ContextOut; onDeleted: () => void }) {
  const [version, setVersion] = useState(0);
  const editable = canChange(context);
  const changed = () => {
    setVersion((v) => v + 1);
    void refreshContext(context.id).catch(() => undefined);
  };
  return (
    <section class="panel context-details" aria-labelledby="context-title">
      <h2 id="context-title">{context.name}</h2>
      <dl class="details">
        <dt>ID</dt><dd class="monospace">{context.id}</dd>
        <dt>Visibility</dt>
        <dd><Badge kind="visibility" value={context.visibility} /> {!editable && <span class="muted small">read-only to you</span>}</dd>
        <dt>Created</dt><dd>{formatDate(context.created_at)}</dd>
        <dt>Description</dt><dd>{context.description || "—"}</dd>
        <dt>Contents</dt><dd>{statsLine(context.stats)}</dd>
      </dl>
      {editable && (
        <div class="row wrap context-actions">
          <RenameContext context={context} />
          <DeleteContext context={context} onDeleted={onDeleted} />
        </div>
      )}
      <ContextFiles context={context} editable={editable} onChanged={changed} />
      <ContextSearch contextId={context.id} />
      <RecentChunks contextId={context.id} version={version} />
    </section>
  );
}
