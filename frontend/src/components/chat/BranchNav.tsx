import { type ChatMessage, isLocalId } from "../../state/messages";
import { showSibling, siblingInfo, streaming } from "../../state/chat";

/** ‹ 1/2 › between the versions of a message (regenerated answers, edited questions). */
export function BranchNav({ message }: { message: ChatMessage }) {
  const { index, count } = siblingInfo(message);
  if (count < 2) return null;
  const busy = streaming.value !== null || isLocalId(message.id);
  const what = message.role === "user" ? "question" : "answer";
  return (
    <span class="branch-nav" role="group" aria-label={`Versions of this ${what}`}>
      <button type="button" class="icon" aria-label={`Previous ${what}`} disabled={busy || index === 0} onClick={() => showSibling(message, -1)}>
        ‹
      </button>
      <span aria-live="polite">
        {index + 1}/{count}
      </span>
      <button type="button" class="icon" aria-label={`Next ${what}`} disabled={busy || index === count - 1} onClick={() => showSibling(message, 1)}>
        ›
      </button>
    </span>
  );
}
