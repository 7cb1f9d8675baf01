import { useEffect, useRef, useState } from "preact/hooks";
import { editQuestion, streaming } from "../../state/chat";
import { type ChatMessage, isLocalId } from "../../state/messages";
import { VoiceAttachment } from "./VoiceAttachment";

/** A question's text, with "Edit" once it is stored: the text becomes editable in place and is
 *  sent as a new version of the question (a branch; the original stays one arrow away). */
export function UserQuestion({ message }: { message: ChatMessage }) {
  const [text, setText] = useState<string | null>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (text !== null) box.current?.focus();
  }, [text === null]);

  const busy = streaming.value !== null;
  const editable = message.status === "done" && !isLocalId(message.id);
  if (text === null) {
    return (
      <>
        <p class="plain">{message.content}</p>
        <VoiceAttachment struct={message.contentStruct} />
        {editable && (
          <button type="button" class="link-button small edit-open" ref={opener} disabled={busy} onClick={() => setText(message.content)}>
            Edit
          </button>
        )}
      </>
    );
  }
  const close = () => {
    setText(null);
    queueMicrotask(() => opener.current?.focus());
  };
  const submit = () => {
    if (editQuestion(message, text)) setText(null);
  };
  const changed = text.trim() !== "" && text !== message.content;
  return (
    <form class="edit-question" onSubmit={(e) => { e.preventDefault(); submit(); }}>
      <label class="visually-hidden" for={`edit-${message.id}`}>
        Edit message
      </label>
      <textarea
        id={`edit-${message.id}`}
        ref={box}
        rows={3}
        maxLength={32000}
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            close();
          } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <div class="row">
        <button type="submit" class="primary" disabled={busy || !changed}>
          Save and submit
        </button>
        <button type="button" onClick={close}>
          Cancel
        </button>
      </div>
    </form>
  );
}
