// "Export my data": a queued job writes a zip of everything the account holds; the list of
// recent exports shows its progress (polled), and a ready one downloads through a short-lived
// signed URL asked for at the click (the URL in the list would have expired). The mail's link,
// /settings?export={id}, brings the user here with that export scrolled to and focused.
import { useEffect, useRef, useState } from "preact/hooks";
import { type DataExport, exportDownload, getExport, isPending, requestExport } from "../../api/account";
import { ApiError, userMessage } from "../../api/envelope";
import { formatBytes, formatDate } from "../../lib/format";
import { leavePage, safeWebUrl } from "../../lib/leavePage";
import { ErrorNote, Loading } from "../common/Status";
import { useExports } from "./useExports";

const STATUS_LABEL: Record<DataExport["status"], string> = {
  queued: "Queued",
  running: "Preparing",
  ready: "Ready",
  failed: "Failed",
  expired: "Expired",
};

const POLITE: Record<string, string> = {
  export_in_progress: "An export is already being prepared. It is listed below, and you will get an e-mail when it is ready.",
  export_not_ready: "This export is not ready yet. The Download button appears when it is.",
  export_expired: "This export has expired and its file was removed. Request a new export.",
};

function politeMessage(error: unknown): string {
  return error instanceof ApiError && error.code in POLITE ? POLITE[error.code]! : userMessage(error);
}

/** The export named by the mail's link (?export={id}), read once. */
function linkedExportId(): string | null {
  return new URLSearchParams(window.location.search).get("export");
}

function rowId(id: string): string {
  return `export-${id}`;
}

function StatusDetail({ item }: { item: DataExport }) {
  switch (item.status) {
    case "queued":
      return <span class="muted">Waiting to start…</span>;
    case "running":
      return <span class="muted">Collecting your data…</span>;
    case "ready":
      return <span>{item.expires_at ? `Available until ${formatDate(item.expires_at)}` : "Available"}</span>;
    case "failed":
      return <span class="export-failed">It could not be made{item.error ? ` (${item.error})` : ""}. Request a new export.</span>;
    case "expired":
      return <span class="muted">Its file was removed. Request a new export.</span>;
  }
}

function ExportRow({ item, linked, busy, onDownload }: {
  item: DataExport;
  linked: boolean;
  busy: boolean;
  onDownload: (item: DataExport) => void;
}) {
  const when = formatDate(item.created_at);
  return (
    <tr id={rowId(item.id)} tabIndex={-1} class={linked ? "export-row linked" : "export-row"} aria-current={linked ? "true" : undefined}>
      <td>{when}</td>
      <td>
        <span class={`badge export-badge tone-${item.status}`}>{STATUS_LABEL[item.status]}</span> <StatusDetail item={item} />
      </td>
      <td>{formatBytes(item.size_bytes) || "—"}</td>
      <td>
        {item.status === "ready" && (
          <button type="button" class="primary" disabled={busy} aria-label={`Download the export of ${when}`}
            onClick={() => onDownload(item)}>
            Download
          </button>
        )}
      </td>
    </tr>
  );
}

export function ExportSection() {
  const exports = useExports();
  const [linkedId] = useState(linkedExportId);
  const [linkedExtra, setLinkedExtra] = useState<DataExport | null>(null);
  const [linkNote, setLinkNote] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null); // "request", or the id being downloaded
  const focused = useRef(false);
  const before = useRef(new Map<string, DataExport["status"]>());

  const items = exports.items;
  const shown = items && linkedExtra && !items.some((e) => e.id === linkedExtra.id) ? [...items, linkedExtra] : items;
  const pending = items?.some(isPending) ?? false;

  // Say it when a watched export finishes (the table changes silently otherwise).
  useEffect(() => {
    if (!items) return;
    for (const e of items) {
      const was = before.current.get(e.id);
      if (was && isPending({ status: was }) && e.status === "ready") setStatus("Your data export is ready to download.");
      if (was && isPending({ status: was }) && e.status === "failed") setStatus("Your data export failed.");
    }
    before.current = new Map(items.map((e) => [e.id, e.status]));
  }, [items]);

  // The mail's link: an export past the last ten is asked for on its own.
  useEffect(() => {
    if (!linkedId || !items || items.some((e) => e.id === linkedId) || linkedExtra) return;
    getExport(linkedId).then(setLinkedExtra, (e: unknown) => {
      setLinkNote(e instanceof ApiError && e.status === 404
        ? "The export in your link was not found for this account."
        : `The export in your link could not be loaded: ${userMessage(e)}`);
    });
  }, [linkedId, items, linkedExtra]);

  useEffect(() => {
    if (!linkedId || focused.current || !shown?.some((e) => e.id === linkedId)) return;
    const row = document.getElementById(rowId(linkedId));
    if (!row) return;
    focused.current = true;
    row.scrollIntoView?.({ block: "center" });
    row.focus({ preventScroll: true });
  }, [linkedId, shown]);

  const request = async () => {
    setBusy("request");
    setError(null);
    setStatus("");
    try {
      exports.add(await requestExport());
      setStatus("Export requested. It is prepared in the background; you will get an e-mail when it is ready.");
    } catch (e) {
      setError(politeMessage(e));
      if (e instanceof ApiError && e.code === "export_in_progress") exports.reload();
    } finally {
      setBusy(null);
    }
  };

  const download = async (item: DataExport) => {
    setBusy(item.id);
    setError(null);
    try {
      const answer = await exportDownload(item.id);
      const url = safeWebUrl(answer.url);
      if (!url) throw new Error("The download address is not a web address.");
      setStatus("Your download is starting.");
      leavePage.to(url);
    } catch (e) {
      setError(politeMessage(e));
      if (e instanceof ApiError && e.code === "export_expired") exports.update({ ...item, status: "expired" });
    } finally {
      setBusy(null);
    }
  };

  return (
    <div class="stack" aria-labelledby="export-title" role="group">
      <h3 id="export-title">Export your data</h3>
      <p class="small">
        A zip of your conversations and messages, uploaded files, contexts, preferences and settings, personal adapters
        and artifacts. It is prepared in the background; you will get an e-mail with a link back here when it is ready.
      </p>
      <div class="row">
        <button type="button" disabled={busy === "request" || pending} onClick={() => void request()}>
          Export my data
        </button>
        {pending && <span class="muted small">An export is being prepared.</span>}
      </div>
      {/* Always in the page, so screen readers hear each change of it. */}
      <p class={status ? "notice" : "visually-hidden"} role="status" aria-live="polite">
        {status}
      </p>
      {error && <p class="error-note" role="alert">{error}</p>}
      {linkNote && <p class="muted small" role="note">{linkNote}</p>}
      {items === null && !exports.error && <Loading label="Loading your exports…" />}
      <ErrorNote message={exports.error} onRetry={exports.reload} />
      {shown && shown.length > 0 && (
        <table class="table small exports-table">
          <caption>Your recent exports</caption>
          <thead>
            <tr>
              <th scope="col">Requested</th>
              <th scope="col">Status</th>
              <th scope="col">Size</th>
              <th scope="col"><span class="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {shown.map((item) => (
              <ExportRow key={item.id} item={item} linked={item.id === linkedId} busy={busy === item.id}
                onDownload={(x) => void download(x)} />
            ))}
          </tbody>
        </table>
      )}
      {shown && shown.length === 0 && <p class="muted small">No exports yet.</p>}
    </div>
  );
}
