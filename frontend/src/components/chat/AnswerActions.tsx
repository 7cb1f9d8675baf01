import { regenerate, streaming } from "../../state/chat";
import type { ChatMessage } from "../../state/messages";
import { Feedback } from "./Feedback";
import { SpeakButton } from "./SpeakButton";
import { WhyThisAnswer } from "./WhyThisAnswer";

/** Under a finished answer: regenerate (the newest answer only), read aloud, feedback, and why. */
export function AnswerActions({ message, latest }: { message: ChatMessage; latest: boolean }) {
  return (
    <footer class="answer-actions">
      <div class="row wrap">
        {latest && (
          <button type="button" disabled={streaming.value !== null} onClick={() => regenerate(message)}>
            Regenerate
          </button>
        )}
        <SpeakButton message={message} />
        <Feedback message={message} />
      </div>
      <WhyThisAnswer message={message} />
    </footer>
  );
}
