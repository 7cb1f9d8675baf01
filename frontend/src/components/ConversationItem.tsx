import { useState } from "preact/hooks";
import { userMessage } from "../api/envelope";
import type { ConversationOut } from "../api/types";
import { formatDate } from "../lib/format";
import { activeId, newConversation } from "../state/chat";
import { remove, rename, setArchived } from "../state/conversations";
import { navigate } from "../state/router";

type Mode = "menu" | "rename" | "delete";

export function ConversationItem({ conversation: c, active }: { conversation: ConversationOut; active: boolean }) {
  const [mode, setMode] = useState<Mode>("menu");
  const [title, setTitle] = useState(c.title ?? "");
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const label = c.title || "Untitled conversation";

  const act = async (fn: () => Promise<void>) => {
    setError(null);
    try {
      await fn();
      setOpen(false);
      setMode("menu");
    } catch (e) {
      setError(userMessage(e));
    }
  };
  const leaveIfOpen = () => {
    if (activeId.value === c.id) {
      newConversation();
      navigate("/");
    }
  };

  return (
    <li class={active ? "conv active" : "conv"}>
      <a
        href={`/c/${c.id}`}
        aria-current={active ? "page" : undefined}
        onClick={(e) => {
          if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          navigate(`/c/${c.id}`);
        }}
      >
        <span class="conv-title">{label}</span>
        <small class="muted">{formatDate(c.updated_at)}</small>
      </a>
      <details class="conv-menu" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
        <summary aria-label={`Actions for ${label}`} title="Actions">
          ⋯
        </summary>
        <div class="menu">
          {mode === "menu" && (
            <>
              <button type="button" onClick={() => setMode("rename")}>
                Rename
              </button>
              <button type="button" onClick={() => void act(async () => { await setArchived(c.id, c.status !== "archived"); leaveIfOpen(); })}>
                {c.status === "archived" ? "Unarchive" : "Archive"}
              </button>
              <button type="button" class="danger" onClick={() => setMode("delete")}>
                Delete
              </button>
            </>
          )}
          {mode === "rename" && (
            <form onSubmit={(e) => { e.preventDefault(); void act(() => rename(c.id, title.trim())); }}>
              <label class="field">
                <span>New title</span>
                <input value={title} maxLength={200} required onInput={(e) => setTitle(e.currentTarget.value)} />
              </label>
              <button type="submit" class="primary" disabled={!title.trim()}>Save</button>
              <button type="button" onClick={() => setMode("menu")}>Cancel</button>
            </form>
          )}
          {mode === "delete" && (
            <div>
              <p>Delete this conversation and all its messages?</p>
              <button type="button" class="danger" onClick={() => void act(async () => { await remove(c.id); leaveIfOpen(); })}>
                Confirm delete
              </button>
              <button type="button" onClick={() => setMode("menu")}>Cancel</button>
            </div>
          )}
          {error && <p class="error-note" role="alert">{error}</p>}
        </div>
      </details>
    </li>
  );
}
