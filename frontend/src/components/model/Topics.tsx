// "Your topics": the clusters the cluster function found in the user's own feedback
// (GET /v1/clusters) with their labels, keywords and sizes and the skill adapter learned for a
// topic, which its user may switch off and on again (a ConfigOps patch on its `status`: applied
// at once where the server lets users approve their own, else an admin decides); and the consent
// to let that feedback shape global clusters (`global_clustering` of GET/PATCH
// /v1/me/personalization; off by default, shown only when the API has the field).
import { useState } from "preact/hooks";
import { api } from "../../api/client";
import { userMessage } from "../../api/envelope";
import type { components } from "../../api/schema";
import { formatDate } from "../../lib/format";
import { useLoad } from "../../lib/useLoad";
import { Empty, ErrorNote, Loading } from "../common/Status";

export type Topic = components["schemas"]["ClusterOut"];
type Skill = NonNullable<Topic["skill"]>;

/** How many of the user's topics are read (the newest changed first). */
export const TOPICS_LIMIT = 50;

/** A topic's name: its label, else its first keywords, else "Unnamed topic". */
export function topicName(t: Pick<Topic, "label" | "keywords">): string {
  return t.label?.trim() || (t.keywords.length ? t.keywords.slice(0, 3).join(", ") : "Unnamed topic");
}

/** `12 pieces of feedback · 9 good, 2 bad` */
export function topicSize(t: Pick<Topic, "size" | "positive_count" | "negative_count">): string {
  return `${t.size} piece${t.size === 1 ? "" : "s"} of feedback · ${t.positive_count} good, ${t.negative_count} bad`;
}

/** `On` or `Off`, with `· still learning` until its first training is served. */
export function skillText(s: Skill): string {
  return `${s.status === "active" ? "On" : "Off"}${s.has_weights ? "" : " · still learning"}`;
}

/** What asking to switch a skill did, in the user's words. */
export function switchOutcome(status: string, on: boolean): string {
  const what = on ? "on" : "off";
  if (status === "applying" || status === "applied") return `Switching the skill ${what}: it takes effect in a moment.`;
  if (status === "pending") return `Asked to switch the skill ${what}: an administrator decides.`;
  return `The skill could not be switched ${what}.`;
}

function SkillCell({ skill, onChanged }: { skill: Skill; onChanged: () => void }) {
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const on = skill.status !== "active";
  const flip = () => {
    setBusy(true);
    setError(null);
    api.post("/v1/config/patches", {
      body: {
        artifact_id: skill.adapter_id, base_version: skill.version,
        patch: [{ op: "add", path: "/status", value: on ? "active" : "disabled" }],
        justification: `switched ${on ? "on" : "off"} by its user in Your topics`,
      },
      retries: 0,
    })
      .then((patch) => {
        setNote(switchOutcome(patch.status, on));
        onChanged();
      })
      .catch((e: unknown) => setError(userMessage(e)))
      .finally(() => setBusy(false));
  };
  return (
    <>
      {skillText(skill)}
      <div>
        <button type="button" class="link-button" disabled={busy} onClick={flip}
          aria-label={`${on ? "Switch on" : "Switch off"} the skill for this topic`}>
          {on ? "Switch on" : "Switch off"}
        </button>
      </div>
      {note && <div class="small muted" role="status">{note}</div>}
      <ErrorNote message={error} />
    </>
  );
}

function Consent() {
  const state = useLoad(() => api.get("/v1/me/personalization"), []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const p = state.data;
  if (!p || typeof p.global_clustering !== "boolean") return null; // the API does not offer it
  const set = (allow: boolean) => {
    setBusy(true);
    setError(null);
    api.patch("/v1/me/personalization", { body: { global_clustering: allow } })
      .then(() => state.reload())
      .catch((e: unknown) => setError(userMessage(e)))
      .finally(() => setBusy(false));
  };
  return (
    <div class="topics-consent">
      <label class="field inline">
        <input type="checkbox" checked={p.global_clustering} disabled={busy} onChange={(e) => set(e.currentTarget.checked)} />
        <span>Allow global clustering</span>
      </label>
      <p class="small muted">
        {p.global_clustering
          ? "Your feedback may help form shared topics, and skills trained on them that other users get."
          : "Off: your feedback forms only your own topics; nobody else's skills learn from it."}
      </p>
      <ErrorNote message={error} />
    </div>
  );
}

export function Topics() {
  const list = useLoad(() => api.get("/v1/clusters", { query: { limit: TOPICS_LIMIT } }), []);
  const items = list.data?.items ?? [];
  return (
    <section class="panel" aria-labelledby="topics-title">
      <h2 id="topics-title">Your topics</h2>
      <p class="small muted">What your feedback is about, grouped by meaning. Topics are found from time to time, not after every answer.</p>
      {list.loading && !list.data && <Loading />}
      <ErrorNote message={list.error} onRetry={list.reload} />
      {list.data && items.length === 0 && <Empty>No topics yet. They form once you have rated enough answers.</Empty>}
      {items.length > 0 && (
        <table class="table" aria-label="Your topics">
          <thead>
            <tr><th scope="col">Topic</th><th scope="col">Keywords</th><th scope="col">Size</th><th scope="col">Skill</th><th scope="col">Updated</th></tr>
          </thead>
          <tbody>
            {items.map((t) => (
              <tr key={t.id} data-topic-id={t.id}>
                <td>
                  {topicName(t)}
                  {t.description && <div class="small muted">{t.description}</div>}
                </td>
                <td>{t.keywords.join(", ") || "—"}</td>
                <td>{topicSize(t)}</td>
                <td>{t.skill ? <SkillCell skill={t.skill} onChanged={list.reload} /> : "—"}</td>
                <td>{formatDate(t.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data?.next_cursor && <p class="small muted">Showing your {items.length} most recently changed topics.</p>}
      <Consent />
    </section>
  );
}
