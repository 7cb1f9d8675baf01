// "Attach file": one of the user's uploaded files not in the context yet
// (POST /v1/contexts/{id}/files queues its ingestion).
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import { formatBytes } from "../../lib/format";
import { ErrorNote } from "../common/Status";
import type { Attachment, FileOut } from "./useContextFiles";

export function AttachFile({ contextId, files, attached, onAttached }: {
  contextId: string; files: FileOut[]; attached: Attachment[]; onAttached: (file: FileOut) => void;
}) {
  const [chosen, setChosen] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const inside = new Set(attached.map((a) => a.file.id));
  const choices = files.filter((f) => f.status !== "uploading" && !inside.has(f.id));
  const pick = choices.find((f) => f.id === chosen) ?? null;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!pick) return;
    setBusy(true);
    setError(null);
    try {
      await api.post("/v1/contexts/{id}/files", { path: { id: contextId }, body: { file_ids: [pick.id] } });
      setChosen("");
      onAttached(pick);
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };

  if (files.length === 0) return <p class="small muted">You have no uploaded files to attach yet: upload one from the chat (“Upload knowledge”).</p>;
  return (
    <form class="attach-form row wrap" onSubmit={(e) => void submit(e)} aria-label="Attach one of your files">
      <label class="field inline">
        <span>File to attach</span>
        <select aria-label="File to attach" value={chosen} onChange={(e) => setChosen(e.currentTarget.value)} disabled={choices.length === 0}>
          <option value="">{choices.length === 0 ? "All your files are attached" : "Choose a file…"}</option>
          {choices.map((f) => (
            <option key={f.id} value={f.id}>
              {f.name}{f.size_bytes != null ? ` (${formatBytes(f.size_bytes)})` : ""}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={busy || !pick}>
        Attach file
      </button>
      <ErrorNote message={error} />
    </form>
  );
}
