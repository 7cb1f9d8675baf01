// The files of a context with their ingestion (followed while it runs), "Detach" on each, and
// "Attach file" for one of the user's files not yet in it. A context the user may not change
// shows its count, and only the user's own files in it (the others' are theirs).
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { ContextOut } from "../../api/types";
import { formatBytes } from "../../lib/format";
import { describeIngestion } from "../../lib/upload";
import { Badge } from "../common/Badge";
import { Empty, ErrorNote, Loading } from "../common/Status";
import { AttachFile } from "./AttachFile";
import { type Attachment, isBusy, useContextFiles } from "./useContextFiles";

function FileRow({ item, contextId, editable, onDetached }: {
  item: Attachment; contextId: string; editable: boolean; onDetached: (fileId: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const detach = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.delete("/v1/contexts/{id}/files/{file_id}", { path: { id: contextId, file_id: item.file.id } });
      onDetached(item.file.id);
    } catch (err) {
      setError(userMessage(err));
      setBusy(false);
    }
  };
  const { file, state } = item;
  return (
    <li class="context-file" data-ingestion={state.status}>
      <div class="row wrap">
        <strong class="file-name">{file.name}</strong>
        <Badge kind="ingestion" value={state.status} />
        <span class="small muted">{formatBytes(file.size_bytes)}</span>
        {editable && (
          <button type="button" class="danger push-end" aria-label={`Detach ${file.name}`} disabled={busy} onClick={() => void detach()}>
            Detach
          </button>
        )}
      </div>
      <p class="small muted" role={isBusy(item) ? "status" : undefined}>{describeIngestion(file.name, state)}</p>
      <ErrorNote message={error} />
    </li>
  );
}

export function ContextFiles({ context, editable, onChanged }: { context: ContextOut; editable: boolean; onChanged: () => void }) {
  const counted = typeof context.stats?.["files"] === "number" ? (context.stats["files"] as number) : null;
  const files = useContextFiles(context.id, onChanged, editable);
  return (
    <section class="context-files" aria-labelledby="context-files-title">
      <h3 id="context-files-title">Files</h3>
      {!editable && (
        <p class="small muted">
          {counted ?? 0} file{counted === 1 ? "" : "s"} in this shared context. It is read-only to you: you can search it
          and answer from it, not change it.
        </p>
      )}
      {files.loading && <Loading label="Loading the files…" />}
      <ErrorNote message={files.error} onRetry={files.reload} />
      {editable && !files.loading && !files.error && files.attached.length === 0 && (
        <Empty>No files yet: attach one of your files, or upload one into this context from the chat.</Empty>
      )}
      {files.attached.length > 0 && (
        <ul class="context-file-list" aria-label={editable ? "Files in this context" : "Your files in this context"}>
          {files.attached.map((item) => (
            <FileRow key={item.file.id} item={item} contextId={context.id} editable={editable}
              onDetached={(id) => { files.removed(id); onChanged(); }} />
          ))}
        </ul>
      )}
      {editable && files.files && (
        <AttachFile contextId={context.id} files={files.files} attached={files.attached}
          onAttached={(file) => { files.added(file); onChanged(); }} />
      )}
    </section>
  );
}
