import { useEffect, useMemo, useRef } from "preact/hooks";
import { activeId, composerText, send, stop, streaming } from "../../state/chat";
import { debounce, drafts } from "../../state/drafts";
import { voiceClip } from "../../state/voice";
import { MicButton } from "./MicButton";
import { VoiceClipNote } from "./VoiceClipNote";

export function Composer() {
  const id = activeId.value;
  const previous = useRef<string | null | undefined>(undefined);
  const save = useMemo(() => debounce((conversation: string | null, text: string) => drafts.set(conversation, text), 1000), []);

  // Restore the conversation's draft when it changes; a conversation that was just created
  // keeps what is being typed (and takes over the `_new` draft).
  useEffect(() => {
    const before = previous.current;
    previous.current = id;
    save.flush();
    if (before === null && id !== null) {
      drafts.adopt(id);
      if (composerText.value.trim()) return;
    }
    composerText.value = drafts.get(id);
  }, [id]);
  useEffect(() => () => save.flush(), []);

  const busy = streaming.value !== null;
  const text = composerText.value;
  const submit = () => {
    if (busy || !text.trim()) return;
    save.cancel();
    if (send(text, voiceClip.value)) {
      composerText.value = "";
      voiceClip.value = null;
      drafts.clear(id);
    }
  };
  const input = useRef<HTMLTextAreaElement>(null);
  // A transcript is added to what is already typed, for review: focus goes to the text.
  const takeTranscript = (transcript: string) => {
    const before = composerText.value.trimEnd();
    composerText.value = before ? `${before} ${transcript}` : transcript;
    save(id, composerText.value);
    input.current?.focus();
  };

  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); submit(); }}>
      <label for="composer-input" class="visually-hidden">
        Message
      </label>
      <VoiceClipNote />
      <textarea
        id="composer-input"
        ref={input}
        rows={3}
        value={text}
        maxLength={32000}
        placeholder="Message Adaptive Chat (Enter sends, Shift+Enter for a new line)"
        onInput={(e) => {
          composerText.value = e.currentTarget.value;
          save(id, e.currentTarget.value);
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <div class="composer-bar">
        <span class="muted small" aria-live="polite">
          {drafts.count.value > 0 ? `${drafts.count.value} draft${drafts.count.value === 1 ? "" : "s"} saved` : ""}
        </span>
        <span class="row">
          <MicButton disabled={busy} onTranscript={takeTranscript} />
          {busy && (
            <button type="button" class="danger" onClick={stop} disabled={streaming.value?.stopping}>
              Stop
            </button>
          )}
          <button type="submit" class="primary" disabled={busy || !text.trim()}>
            Send
          </button>
        </span>
      </div>
    </form>
  );
}
