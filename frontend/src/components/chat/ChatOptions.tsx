import { useState } from "preact/hooks";
import { contextIds, workflowId } from "../../state/chat";
import { contexts, contextsError, ensureContexts } from "../../state/contexts";

/** Which knowledge context the answer is grounded in, and an optional workflow override. */
export function ChatOptions() {
  const [open, setOpen] = useState(false);
  const chosen = contextIds.value[0] ?? "";
  return (
    <details
      class="tool-panel"
      open={open}
      onToggle={(e) => {
        setOpen(e.currentTarget.open);
        if (e.currentTarget.open) ensureContexts();
      }}
    >
      <summary>
        Answer options{chosen || workflowId.value ? " (set)" : ""}
      </summary>
      <div class="tool-body">
        <label class="field">
          <span>Answer from context</span>
          <select aria-label="Answer from context" value={chosen} onChange={(e) => (contextIds.value = e.currentTarget.value ? [e.currentTarget.value] : [])}>
            <option value="">None (no retrieval)</option>
            {contexts.value.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
                {c.visibility === "global" ? " (global)" : ""}
              </option>
            ))}
          </select>
        </label>
        {contextsError.value && <p class="error-note" role="alert">{contextsError.value}</p>}
        <label class="field">
          <span>Workflow ID (optional)</span>
          <input
            value={workflowId.value}
            placeholder="Default workflow"
            pattern="[0-9a-fA-F-]{36}"
            title="A workflow artifact's id (a UUID)"
            onInput={(e) => (workflowId.value = e.currentTarget.value)}
          />
        </label>
      </div>
    </details>
  );
}
