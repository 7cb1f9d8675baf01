// Thumbs up / down with an optional note, and "Correct this answer" (the answer as it should
// have been: corrected_text). A second feedback on the same answer replaces the first.
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { FeedbackOut, PreferenceCreate } from "../../api/types";
import { activeId, feedback } from "../../state/chat";
import type { ChatMessage } from "../../state/messages";

type Signal = "like" | "dislike";

function outcomeText(out: FeedbackOut): string {
  const t = out.training;
  const parts = [out.replaced ? "Feedback updated." : "Thanks, feedback saved."];
  if (out.preference.filtered_reason) parts.push(`It will not be trained on (${out.preference.filtered_reason}).`);
  else if (t.outcome === "queued" || t.outcome === "joined") parts.push("Your model will train on it soon.");
  else if (t.outcome === "running") parts.push("Your model is training.");
  else if (t.outcome === "paused") parts.push("Learning is paused.");
  else parts.push(`${t.new_events}/${t.threshold} answers rated before your model trains again.`);
  return parts.join(" ");
}

export function Feedback({ message }: { message: ChatMessage }) {
  const given = feedback.value[message.id];
  const [mode, setMode] = useState<"none" | "note" | "correct">("none");
  const [notes, setNotes] = useState(given?.notes ?? "");
  const [corrected, setCorrected] = useState(given?.corrected_text ?? message.content);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const current = given?.explicit_signal;

  const post = async (signal: Signal, extra: Partial<PreferenceCreate> = {}) => {
    const conversationId = activeId.value;
    if (!conversationId) return false;
    setBusy(true);
    setError(null);
    try {
      const body: PreferenceCreate = { conversation_id: conversationId, message_id: message.id, explicit_signal: signal, ...extra };
      const out = await api.post("/v1/preferences", { body });
      feedback.value = { ...feedback.value, [message.id]: out.preference };
      setStatus(outcomeText(out));
      return true;
    } catch (e) {
      setError(userMessage(e));
      return false;
    } finally {
      setBusy(false);
    }
  };

  const thumb = async (signal: Signal) => {
    if (await post(signal)) setMode("note");
  };

  return (
    <>
      <button type="button" aria-pressed={current === "like"} disabled={busy} onClick={() => void thumb("like")}>
        Good answer
      </button>
      <button type="button" aria-pressed={current === "dislike"} disabled={busy} onClick={() => void thumb("dislike")}>
        Bad answer
      </button>
      <button type="button" aria-expanded={mode === "correct"} disabled={busy} onClick={() => setMode(mode === "correct" ? "none" : "correct")}>
        Correct this answer
      </button>
      {status && <span class="muted small" role="status">{status}</span>}
      {error && <span class="error-note" role="alert">{error}</span>}
      {mode === "note" && (current === "like" || current === "dislike") && (
        <form class="feedback-form" onSubmit={(e) => { e.preventDefault(); void post(current, { notes: notes.trim() || null }).then((ok) => ok && setMode("none")); }}>
          <label class="field">
            <span>Note (optional)</span>
            <input value={notes} maxLength={500} onInput={(e) => setNotes(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy || !notes.trim()}>Save note</button>
          <button type="button" onClick={() => setMode("none")}>Close</button>
        </form>
      )}
      {mode === "correct" && (
        <form class="feedback-form wide" onSubmit={(e) => { e.preventDefault(); void post("dislike", { corrected_text: corrected.trim(), notes: notes.trim() || null }).then((ok) => ok && setMode("none")); }}>
          <label class="field">
            <span>Corrected answer</span>
            <textarea rows={8} value={corrected} maxLength={32000} onInput={(e) => setCorrected(e.currentTarget.value)} />
          </label>
          <div class="row">
            <button type="submit" class="primary" disabled={busy || !corrected.trim()}>Submit correction</button>
            <button type="button" onClick={() => setMode("none")}>Cancel</button>
          </div>
        </form>
      )}
    </>
  );
}
