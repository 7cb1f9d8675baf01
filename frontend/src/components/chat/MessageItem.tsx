import { isLocalId, type ChatMessage } from "../../state/messages";
import { answerAgain, path, streaming } from "../../state/chat";
import { AnswerActions } from "./AnswerActions";
import { BranchNav } from "./BranchNav";
import { Citations } from "./Citations";
import { UserQuestion } from "./UserQuestion";
import { Markdown } from "./Markdown";

const ROLE_LABEL: Record<ChatMessage["role"], string> = {
  user: "You",
  assistant: "Assistant",
  system: "System",
  summary: "Summary",
};

export function MessageItem({ message: m, isLatestAnswer }: { message: ChatMessage; isLatestAnswer: boolean }) {
  const role = m.role === "summary" ? "system" : m.role;
  const writing = m.status === "streaming";
  const stopping = writing && streaming.value?.assistantId === m.id && streaming.value.stopping;
  return (
    <article class={`message ${role}${writing ? " streaming" : ""}`} data-role={role} aria-label={ROLE_LABEL[m.role]}>
      <header class="message-head">
        <span class="who">{ROLE_LABEL[m.role]}</span>
        {m.status === "pending" && <span class="muted">sending…</span>}
        {writing && <span class="muted">{stopping ? "stopping…" : "writing…"}</span>}
        <BranchNav message={m} />
      </header>
      <div class="message-body">
        {role === "user" ? (
          <UserQuestion message={m} />
        ) : m.content ? (
          <Markdown text={m.content} />
        ) : writing ? (
          <p class="muted typing">Thinking…</p>
        ) : (
          <p class="muted">(no text)</p>
        )}
      </div>
      <Citations struct={m.contentStruct} />
      {m.cancelled && <p class="muted small">Stopped. The partial answer is kept.</p>}
      {m.finishReason && !["stop", "length", "cancelled"].includes(m.finishReason) && (
        <p class="muted small">This answer ended early ({m.finishReason}).</p>
      )}
      {m.error && (
        <p class="message-error" role="note">
          {m.error}
        </p>
      )}
      {role === "user" && m.error && !isLocalId(m.id) && path.value[path.value.length - 1]?.id === m.id && (
        <button type="button" disabled={streaming.value !== null} onClick={() => answerAgain(m.id)}>
          Answer again
        </button>
      )}
      {role === "assistant" && m.status === "done" && !isLocalId(m.id) && (
        <AnswerActions message={m} latest={isLatestAnswer} />
      )}
    </article>
  );
}
