// What the persona has learned and the controls over it: pause/resume learning, reset to the
// base model (confirmed in the page: a native dialog would be blocked in tests and is easy to
// dismiss by accident), and the instructions (edit, delete).
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { components } from "../../api/schema";
import { formatDate } from "../../lib/format";
import { useLoad } from "../../lib/useLoad";
import { Badge } from "../common/Badge";
import { ErrorNote, Loading } from "../common/Status";

type Instruction = components["schemas"]["InstructionOut"];

const APPLIED: Record<string, string> = {
  weights: "learned into the weights",
  prompt: "applied as prompt text",
  over_budget: "over the prompt budget (not applied)",
};

function InstructionRow({ item, onChanged, onError }: { item: Instruction; onChanged: () => void; onError: (m: string) => void }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(item.text);
  const [kind, setKind] = useState(item.kind);
  const [busy, setBusy] = useState(false);
  const act = (fn: () => Promise<unknown>) => {
    setBusy(true);
    fn().then(() => { setEditing(false); onChanged(); }).catch((e: unknown) => onError(userMessage(e))).finally(() => setBusy(false));
  };
  if (editing) {
    return (
      <li class="instruction">
        <form class="row wrap" onSubmit={(e) => { e.preventDefault(); act(() => api.patch("/v1/me/personalization/instructions/{id}", { path: { id: item.id }, body: { kind, text } })); }}>
          <label class="field inline">
            <span>Kind</span>
            <select value={kind} onChange={(e) => setKind(e.currentTarget.value as Instruction["kind"])}>
              <option value="always">always</option>
              <option value="never">never</option>
            </select>
          </label>
          <label class="field grow">
            <span>Instruction text</span>
            <input value={text} maxLength={500} required onInput={(e) => setText(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy || text.trim() === ""}>Save</button>
          <button type="button" onClick={() => { setEditing(false); setText(item.text); setKind(item.kind); }}>Cancel</button>
        </form>
      </li>
    );
  }
  return (
    <li class="instruction">
      <Badge kind="kind" value={item.kind} /> <span>{item.text}</span>
      <div class="small muted">
        {APPLIED[item.applied_as ?? ""] ?? "pending"}
        {item.learned_version != null ? ` · learned by v${item.learned_version}` : ""} · {formatDate(item.updated_at)}
      </div>
      <div class="row">
        <button type="button" class="link-button" disabled={busy} onClick={() => setEditing(true)} aria-label={`Edit instruction: ${item.text}`}>Edit</button>
        <button type="button" class="link-button danger" disabled={busy} aria-label={`Delete instruction: ${item.text}`}
          onClick={() => act(() => api.delete("/v1/me/personalization/instructions/{id}", { path: { id: item.id } }))}>Delete</button>
      </div>
    </li>
  );
}

export function Personalization({ onChanged }: { onChanged?: () => void }) {
  const state = useLoad(() => api.get("/v1/me/personalization"), []);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [clearInstructions, setClearInstructions] = useState(false);
  const p = state.data;
  const run = (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    fn().then(() => { state.reload(); onChanged?.(); }).catch((e: unknown) => setError(userMessage(e))).finally(() => setBusy(false));
  };
  return (
    <section class="panel" aria-labelledby="persona-title">
      <h2 id="persona-title">What your model has learned</h2>
      {state.loading && !p && <Loading />}
      <ErrorNote message={state.error} onRetry={state.reload} />
      <ErrorNote message={error} />
      {p && (
        <>
          <dl class="details">
            <dt>Persona</dt>
            <dd>{p.adapter_id ? `v${p.adapter_version ?? "?"} ${p.has_weights ? "(trained weights)" : "(base model, prompt only)"}` : "none yet: rate an answer to start one"}</dd>
            <dt>Learning</dt>
            <dd>{p.learning_paused ? <Badge kind="status" value="paused" /> : <Badge kind="status" value="active" />}</dd>
            <dt>Feedback not yet trained on</dt>
            <dd>{p.training.new_events} of {p.training.threshold} needed for the next training</dd>
            {p.training.cooldown_until && (<><dt>Next training not before</dt><dd>{formatDate(p.training.cooldown_until)}</dd></>)}
            {p.reset_at && (<><dt>Last reset</dt><dd>{formatDate(p.reset_at)}</dd></>)}
          </dl>
          <div class="row wrap persona-controls">
            {p.learning_paused
              ? <button type="button" disabled={busy} onClick={() => run(() => api.patch("/v1/me/personalization", { body: { learning_paused: false } }))}>Resume learning</button>
              : <button type="button" disabled={busy} onClick={() => run(() => api.patch("/v1/me/personalization", { body: { learning_paused: true } }))}>Pause learning</button>}
            {!confirming && <button type="button" class="danger" disabled={busy} onClick={() => setConfirming(true)}>Reset to base model</button>}
          </div>
          {confirming && (
            <div class="confirm" role="group" aria-label="Confirm the reset">
              <p>Serve the base model again? Any queued or running training is cancelled, and the feedback given so far is never trained on again.</p>
              <label class="field inline">
                <input type="checkbox" checked={clearInstructions} onChange={(e) => setClearInstructions(e.currentTarget.checked)} />
                <span>Also delete the instructions</span>
              </label>
              <div class="row">
                <button type="button" class="danger" disabled={busy}
                  onClick={() => { setConfirming(false); run(() => api.post("/v1/me/personalization/reset", { body: { clear_instructions: clearInstructions }, retries: 0 })); }}>
                  Confirm reset
                </button>
                <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
              </div>
            </div>
          )}
          <h3>Instructions</h3>
          {p.instructions.length === 0
            ? <p class="muted">No instructions. Mark an answer "always" or "never" with a note to add one.</p>
            : (
              <ul class="instructions">
                {p.instructions.map((i) => <InstructionRow key={`${i.id}:${i.updated_at}`} item={i} onChanged={state.reload} onError={setError} />)}
              </ul>
            )}
        </>
      )}
    </section>
  );
}
