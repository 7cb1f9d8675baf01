import { discardClip } from "../../api/voice";
import { activeId, composerText } from "../../state/chat";
import { drafts } from "../../state/drafts";
import { voiceClip } from "../../state/voice";
import { Icon } from "../common/Icon";

/** Above the composer while its text is a recording's transcript: the message will be sent as
 *  a voice message; discarding drops the clip and its transcript. */
export function VoiceClipNote() {
  const clip = voiceClip.value;
  if (!clip) return null;
  const discard = () => {
    void discardClip(clip.clipId);
    voiceClip.value = null;
    composerText.value = "";
    drafts.clear(activeId.value);
    document.getElementById("composer-input")?.focus();
  };
  return (
    <div class="voice-clip" role="note">
      <span class="voice-badge">
        <Icon name="mic" /> Voice message, {clip.durationS.toFixed(1)} s
      </span>
      <span class="muted">The text below is its transcript: check it, then send.</span>
      <button type="button" class="link-button small" onClick={discard}>
        Discard voice message
      </button>
    </div>
  );
}
