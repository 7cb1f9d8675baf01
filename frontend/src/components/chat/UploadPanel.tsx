import { useEffect, useRef, useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import { formatBytes } from "../../lib/format";
import { checkFile, describeIngestion, uploadFile, watchIngestion } from "../../lib/upload";
import { contexts, ensureContexts } from "../../state/contexts";
import { limits, loadLimits } from "../../state/files";

/** Upload a file into a knowledge context (checked against the plan's limits first). */
export function UploadPanel() {
  const [file, setFile] = useState<File | null>(null);
  const [contextId, setContextId] = useState("");
  const [chunkSize, setChunkSize] = useState("");
  const [progress, setProgress] = useState<number | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const lim = limits.value;
  const watching = useRef<AbortController | null>(null);
  useEffect(() => () => watching.current?.abort(), []);

  const onToggle = (open: boolean) => {
    if (!open) return;
    ensureContexts();
    loadLimits().catch((e: unknown) => setError(userMessage(e)));
  };
  const size = chunkSize.trim() === "" ? null : Number(chunkSize);
  const sizeError = size !== null && (!Number.isInteger(size) || size < 64 || size > 4000) ? "Chunk size must be a whole number from 64 to 4000." : null;
  const fileError = file ? checkFile(file, lim) : null;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!file || fileError || sizeError) return;
    setError(null);
    setStatus(null);
    setProgress(0);
    try {
      watching.current?.abort();
      const out = await uploadFile({ file, contextId: contextId || null, chunkSize: size }, setProgress);
      setStatus(
        `${out.fs_path} ${out.duplicate ? "was already stored" : "uploaded"}${out.ingestion_queued ? "; it is being indexed." : "."}`,
      );
      if (out.context_id) {
        // Indexing runs in the background: say when the file can be asked about.
        const abort = (watching.current = new AbortController());
        void watchIngestion(out.file.id, out.context_id, (state) => setStatus(describeIngestion(out.fs_path, state)), { signal: abort.signal })
          .catch((err: unknown) => {
            if (!abort.signal.aborted) setError(`Could not follow the indexing: ${userMessage(err)}`);
          });
      }
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setProgress(null);
    }
  };

  return (
    <details class="tool-panel" onToggle={(e) => onToggle(e.currentTarget.open)}>
      <summary>Upload knowledge</summary>
      <form class="tool-body" onSubmit={(e) => void submit(e)}>
        {lim && (
          <p class="small muted">
            Up to {formatBytes(lim.max_bytes)} ({lim.plan_tier} plan): {lim.allowed_extensions.join(" ")}
          </p>
        )}
        <label class="field">
          <span>File</span>
          <input type="file" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </label>
        <label class="field">
          <span>Upload to context</span>
          <select aria-label="Upload to context" value={contextId} onChange={(e) => setContextId(e.currentTarget.value)}>
            <option value="">No context (just store the file)</option>
            {contexts.value
              .filter((c) => c.visibility !== "global")
              .map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
          </select>
        </label>
        <label class="field">
          <span>Chunk size (optional, 64–4000 tokens)</span>
          <input type="number" min={64} max={4000} value={chunkSize} onInput={(e) => setChunkSize(e.currentTarget.value)} />
        </label>
        {(fileError || sizeError) && <p class="error-note" role="alert">{fileError ?? sizeError}</p>}
        <button type="submit" class="primary" disabled={!file || !!fileError || !!sizeError || progress !== null}>
          Upload
        </button>
        {progress !== null && <progress value={progress} max={1} aria-label="Upload progress" />}
        {status && <p class="notice" role="status">{status}</p>}
        {error && <p class="error-note" role="alert">{error}</p>}
      </form>
    </details>
  );
}
