import { userMessage } from "../../api/envelope";
import type { ChatMessage } from "../../state/messages";
import { speakAnswer, speakError, speaking, stopSpeaking } from "../../state/voice";
import { Icon } from "../common/Icon";

/** "Read aloud" on an answer, a toggle (its name stays, aria-pressed says whether it is on):
 *  the speech streams in and plays as it comes; pressed again (or another answer's button) it
 *  stops. */
export function SpeakButton({ message }: { message: ChatMessage }) {
  const mine = speaking.value?.messageId === message.id ? speaking.value : null;
  const error = speakError.value?.messageId === message.id ? speakError.value.message : null;
  return (
    <>
      <button
        type="button"
        class="speak-button"
        aria-pressed={mine !== null}
        title={mine ? "Stop reading" : "Read the answer aloud"}
        onClick={() => (mine ? stopSpeaking() : void speakAnswer(message.id, message.content, userMessage))}
      >
        <Icon name={mine ? "stop" : "speaker"} /> Read aloud
      </button>
      <span class="visually-hidden" role="status" aria-live="polite">
        {mine ? (mine.playing ? "Reading the answer aloud." : "Preparing the speech…") : ""}
      </span>
      {error && (
        <span class="message-error" role="alert">
          {error}
        </span>
      )}
    </>
  );
}
