// "Rename": the context's name and description, changed in place (PATCH /v1/contexts/{id}).
import { useEffect, useRef, useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import type { ContextOut } from "../../api/types";
import { updateContext } from "../../state/contexts";
import { ErrorNote } from "../common/Status";

export function RenameContext({ context }: { context: ContextOut }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(context.name);
  const [description, setDescription] = useState(context.description ?? "");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const opener = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (open) input.current?.focus();
  }, [open]);

  const close = () => {
    setOpen(false);
    setError(null);
    setTimeout(() => opener.current?.focus(), 0);
  };
  const start = () => {
    setName(context.name);
    setDescription(context.description ?? "");
    setOpen(true);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await updateContext(context.id, { name: name.trim(), description: description.trim() });
      close();
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };

  if (!open) {
    return (
      <button type="button" ref={opener} onClick={start}>
        Rename
      </button>
    );
  }
  return (
    <form class="rename-form" aria-label="Rename the context" onSubmit={(e) => void submit(e)}
      onKeyDown={(e) => { if (e.key === "Escape") close(); }}>
      <label class="field">
        <span>New name</span>
        <input ref={input} required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>New description</span>
        <textarea rows={2} maxLength={2000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <ErrorNote message={error} />
      <div class="row">
        <button type="submit" class="primary" disabled={busy || !name.trim()}>
          Save
        </button>
        <button type="button" onClick={close}>
          Cancel
        </button>
      </div>
    </form>
  );
}
