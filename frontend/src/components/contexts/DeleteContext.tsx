// "Delete context", confirmed in the page (no native confirm(): a test browser dismisses it and
// a person clicks through it): DELETE /v1/contexts/{id}. The files stay; their chunks go.
import { useEffect, useRef, useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import type { ContextOut } from "../../api/types";
import { deleteContext } from "../../state/contexts";
import { ErrorNote } from "../common/Status";

export function DeleteContext({ context, onDeleted }: { context: ContextOut; onDeleted: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const cancelButton = useRef<HTMLButtonElement>(null);
  const opener = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (confirming) cancelButton.current?.focus();
  }, [confirming]);

  const cancel = () => {
    setConfirming(false);
    setError(null);
    setTimeout(() => opener.current?.focus(), 0);
  };
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await deleteContext(context.id);
      onDeleted();
    } catch (err) {
      setError(userMessage(err));
      setBusy(false);
    }
  };

  if (!confirming) {
    return (
      <button type="button" class="danger" ref={opener} onClick={() => setConfirming(true)}>
        Delete context
      </button>
    );
  }
  return (
    <div class="confirm" role="group" aria-label="Confirm deleting the context" onKeyDown={(e) => { if (e.key === "Escape") cancel(); }}>
      <p>
        Delete “{context.name}”? Its passages leave search and answers can no longer cite them. Your files stay in your
        files.
      </p>
      <ErrorNote message={error} />
      <div class="row">
        <button type="button" class="danger" disabled={busy} onClick={() => void confirm()}>
          Confirm delete
        </button>
        <button type="button" ref={cancelButton} onClick={cancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}
