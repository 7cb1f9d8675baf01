import { useEffect, useState } from "preact/hooks";
import { activeId, newConversation } from "../state/chat";
import {
  conversations,
  filterConversations,
  listError,
  listLoading,
  listStatus,
  loadConversations,
  nextCursor,
  showStatus,
} from "../state/conversations";
import { navigate } from "../state/router";
import { ConversationItem } from "./ConversationItem";
import { Empty, ErrorNote } from "./common/Status";

export function Sidebar() {
  const [query, setQuery] = useState("");
  useEffect(() => {
    if (conversations.value.length === 0) void loadConversations();
  }, []);
  const items = filterConversations(conversations.value, query);
  const archived = listStatus.value === "archived";

  return (
    <aside id="sidebar" class="sidebar" aria-label="Conversations">
      <button type="button" class="primary wide" onClick={() => { newConversation(); navigate("/"); }}>
        New conversation
      </button>
      <label class="field">
        <span>Search conversations</span>
        <input type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} placeholder="Title or ID" />
      </label>
      <div class="segmented" role="group" aria-label="Which conversations">
        <button type="button" aria-pressed={!archived} onClick={() => showStatus("open")}>
          Open
        </button>
        <button type="button" aria-pressed={archived} onClick={() => showStatus("archived")}>
          Archived
        </button>
      </div>
      <ErrorNote message={listError.value} onRetry={() => void loadConversations()} />
      <ul class="conv-list">
        {items.map((c) => (
          <ConversationItem key={c.id} conversation={c} active={c.id === activeId.value} />
        ))}
      </ul>
      {!listLoading.value && items.length === 0 && (
        <Empty>{query ? "No loaded conversation matches." : archived ? "No archived conversations." : "No conversations yet."}</Empty>
      )}
      {listLoading.value && <p class="muted" role="status">Loading…</p>}
      {nextCursor.value && !listLoading.value && (
        <button type="button" class="wide" onClick={() => void loadConversations(true)}>
          Load more
        </button>
      )}
    </aside>
  );
}
