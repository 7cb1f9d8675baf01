import { useEffect, useRef } from "preact/hooks";
import { path, streaming } from "../../state/chat";
import { MessageItem } from "./MessageItem";

export function MessageList() {
  const list = path.value;
  const end = useRef<HTMLDivElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const last = list[list.length - 1];
  const lastAnswer = [...list].reverse().find((m) => m.role === "assistant");

  // Follow the answer as it grows, unless the reader has scrolled up.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const nearBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 160;
    if (nearBottom || streaming.value === null) end.current?.scrollIntoView?.({ block: "end" });
  }, [last?.id, last?.content.length]);

  return (
    <div class="messages" ref={box} role="log" aria-live="off" aria-busy={streaming.value !== null} aria-label="Chat history">
      {list.map((m) => (
        <MessageItem key={m.id} message={m} isLatestAnswer={m.id === lastAnswer?.id} />
      ))}
      <div ref={end} />
      <p class="visually-hidden" role="status" aria-live="polite">
        {streaming.value ? "Writing an answer…" : last?.role === "assistant" ? "Answer complete." : ""}
      </p>
    </div>
  );
}
