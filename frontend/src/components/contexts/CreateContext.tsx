// "New context": a name (required) and a description; POST /v1/contexts.
import { useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import type { ContextOut } from "../../api/types";
import { createContext } from "../../state/contexts";
import { ErrorNote } from "../common/Status";

export function CreateContext({ onCreated }: { onCreated?: (made: ContextOut) => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const made = await createContext(name.trim(), description.trim());
      setName("");
      setDescription("");
      onCreated?.(made);
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="new-context">
      <h2 id="new-context">New context</h2>
      <label class="field">
        <span>Name</span>
        <input required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label class="field">
        <span>Description</span>
        <textarea rows={2} maxLength={2000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <ErrorNote message={error} />
      <button type="submit" class="primary" disabled={busy || !name.trim()}>
        Create context
      </button>
    </form>
  );
}
