import { useEffect } from "preact/hooks";
import { activeId, chatError, loadConversation, loadError, loading, newConversation, path } from "../../state/chat";
import { closeCitation } from "../../state/passage";
import { route } from "../../state/router";
import { ErrorNote, Loading } from "../common/Status";
import { ChatOptions } from "./ChatOptions";
import { CitedPassage } from "./CitedPassage";
import { Composer } from "./Composer";
import { MessageList } from "./MessageList";
import { UploadPanel } from "./UploadPanel";

export function ChatView() {
  const r = route.value;
  const wanted = r.name === "chat" ? r.conversationId : null;
  useEffect(() => {
    if (wanted && wanted !== activeId.value) void loadConversation(wanted);
    else if (!wanted && activeId.value) newConversation();
    closeCitation();
  }, [wanted]);

  const empty = path.value.length === 0;
  return (
    <section class="chat" aria-label="Chat">
      <ErrorNote message={loadError.value} onRetry={wanted ? () => void loadConversation(wanted) : undefined} />
      {loading.value && <Loading label="Loading the conversation…" />}
      {empty && !loading.value && !loadError.value && (
        <div class="welcome">
          <h1>What can I help with?</h1>
          <p class="muted">Answers stream as they are written. Rate them to teach your own model.</p>
        </div>
      )}
      <MessageList />
      <ErrorNote message={chatError.value} />
      <div class="chat-tools">
        <ChatOptions />
        <UploadPanel />
      </div>
      <Composer />
      <CitedPassage />
    </section>
  );
}
