import { useEffect, useRef, useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import { transcribe } from "../../api/voice";
import { formatClock } from "../../lib/format";
import { RecorderError, VoiceRecorder } from "../../lib/recorder";
import { clipFrom, voiceClip } from "../../state/voice";
import { Icon } from "../common/Icon";

/** The recording limit (the voice service refuses longer clips: VOICE_MAX_SECONDS). */
export const MAX_RECORDING_S = 120;

type Phase = "idle" | "starting" | "recording" | "transcribing";

/** The composer's microphone, a toggle (its name stays; aria-pressed is on while recording):
 *  press to record, press again (or reach the limit) to stop → the clip is transcribed and the
 *  transcript goes to `onTranscript` for review; cancel throws the recording (or the upload)
 *  away. What happens is announced in a live region; errors in an alert. */
export function MicButton({ disabled, onTranscript }: { disabled: boolean; onTranscript: (text: string) => void }) {
  const [phase, setPhase] = useState<Phase>("idle");
  const [elapsed, setElapsed] = useState(0);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<string | null>(null);
  const recorder = useRef<VoiceRecorder | null>(null);
  const upload = useRef<AbortController | null>(null);
  const button = useRef<HTMLButtonElement>(null);

  // Leaving the chat mid-recording releases the microphone.
  useEffect(() => () => {
    recorder.current?.cancel();
    upload.current?.abort();
  }, []);

  const finish = async () => {
    const rec = recorder.current;
    if (!rec) return;
    recorder.current = null;
    setPhase("transcribing");
    setStatus("Transcribing your recording…");
    const abort = new AbortController();
    upload.current = abort;
    try {
      const { blob } = await rec.stop();
      const transcript = await transcribe(blob, abort.signal);
      if (abort.signal.aborted) return;
      voiceClip.value = clipFrom(transcript);
      setStatus(`Transcript ready (${transcript.duration_s.toFixed(1)} s). Review it, then send.`);
      onTranscript(transcript.text);
    } catch (e) {
      if (abort.signal.aborted) return;
      setError(userMessage(e));
      setStatus("");
    } finally {
      if (upload.current === abort) {
        upload.current = null;
        setPhase("idle");
      }
    }
  };

  // The elapsed time, and the automatic stop at the limit.
  useEffect(() => {
    if (phase !== "recording") return;
    const timer = setInterval(() => {
      const seconds = recorder.current?.elapsedS ?? 0;
      setElapsed(seconds);
      if (seconds >= MAX_RECORDING_S) {
        setStatus("The two-minute limit was reached; recording stopped.");
        void finish();
      }
    }, 250);
    return () => clearInterval(timer);
  }, [phase]);

  const start = async () => {
    setError(null);
    setPhase("starting");
    setStatus("Starting the microphone…");
    try {
      recorder.current = await VoiceRecorder.start();
      setElapsed(0);
      setPhase("recording");
      setStatus("Recording. Press the microphone button again to stop, or Escape to cancel.");
    } catch (e) {
      setPhase("idle");
      setStatus("");
      setError(e instanceof RecorderError ? e.message : userMessage(e));
    }
  };

  const cancel = () => {
    recorder.current?.cancel();
    recorder.current = null;
    upload.current?.abort();
    upload.current = null;
    setPhase("idle");
    setStatus("Recording discarded.");
    button.current?.focus();
  };

  const recording = phase === "recording";
  const busy = phase === "starting" || phase === "transcribing";
  return (
    <span class="mic" onKeyDown={(e) => {
      if (e.key === "Escape" && (recording || phase === "transcribing")) {
        e.preventDefault();
        cancel();
      }
    }}>
      <button
        type="button"
        ref={button}
        class={`mic-button${recording ? " recording" : ""}`}
        aria-pressed={recording}
        aria-label="Record a voice message"
        title={recording ? "Stop recording and transcribe" : "Record a voice message"}
        // Not `disabled` while busy: a disabled button drops the keyboard focus it holds.
        disabled={disabled && !recording && !busy}
        aria-disabled={busy}
        onClick={() => {
          if (!busy) void (recording ? finish() : start());
        }}
      >
        <Icon name={recording ? "stop" : "mic"} />
      </button>
      {recording && (
        <span class="rec-indicator" role="timer" aria-live="off">
          <span class="rec-dot" aria-hidden="true" />
          <span class="visually-hidden">Recording:</span> {formatClock(elapsed)} / {formatClock(MAX_RECORDING_S)}
        </span>
      )}
      {phase === "transcribing" && <span class="muted small">Transcribing…</span>}
      {(recording || phase === "transcribing") && (
        <button type="button" class="link-button small" onClick={cancel}>
          {recording ? "Cancel recording" : "Cancel"}
        </button>
      )}
      <span class="visually-hidden" role="status" aria-live="polite">
        {status}
      </span>
      {error && (
        <span class="mic-error small" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}
