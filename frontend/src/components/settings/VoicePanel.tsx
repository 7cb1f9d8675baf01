// The voice answers are read in (GET /v1/voice/voices), saved as the user's default_voice
// (PATCH /v1/me/settings); the speak route uses it when no voice is named.
import { useEffect, useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import type { UserSettingsOut } from "../../api/types";
import { listVoices, loadSettings, saveDefaultVoice, type VoiceList } from "../../api/voice";
import { useLoad } from "../../lib/useLoad";
import { ErrorNote, Loading } from "../common/Status";

async function load(): Promise<{ list: VoiceList; saved: string | null; settingsError: string | null }> {
  const [list, settings] = await Promise.all([listVoices(), loadSettings().then((s) => s, (e: unknown) => e)]);
  if (settings instanceof Error) return { list, saved: null, settingsError: userMessage(settings) };
  return { list, saved: (settings as UserSettingsOut).default_voice, settingsError: null };
}

export function VoicePanel() {
  const v = useLoad(load, []);
  const [choice, setChoice] = useState("");
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (v.data) setChoice(v.data.saved ?? v.data.list.default);
  }, [v.data]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setStatus(null);
    setError(null);
    setBusy(true);
    try {
      await saveDefaultVoice(choice);
      setStatus("Voice saved. Answers are read in it from now on.");
    } catch (err) {
      setError(userMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel" aria-labelledby="voice-title">
      <h2 id="voice-title">Voice</h2>
      {v.loading && <Loading label="Loading the voices…" />}
      <ErrorNote message={v.error} onRetry={v.reload} />
      {v.data && (
        <form class="stack" onSubmit={(e) => void submit(e)}>
          <label class="field">
            <span>Default voice</span>
            <select value={choice} onChange={(e) => setChoice(e.currentTarget.value)}>
              {v.data.list.voices.map((voice) => (
                <option key={voice.id} value={voice.id}>
                  {voice.id} ({voice.language}){voice.id === v.data!.list.default ? ", the default" : ""}
                </option>
              ))}
            </select>
          </label>
          {v.data.settingsError && <p class="muted small">Your saved choice could not be read: {v.data.settingsError}</p>}
          <div class="row">
            <button type="submit" class="primary" disabled={busy || !choice}>
              Save voice
            </button>
          </div>
          {status && <p class="notice" role="status">{status}</p>}
          {error && <p class="error-note" role="alert">{error}</p>}
        </form>
      )}
    </section>
  );
}
