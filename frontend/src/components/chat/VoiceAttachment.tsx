import { useEffect, useRef, useState } from "preact/hooks";
import { userMessage } from "../../api/envelope";
import type { ContentStruct, Segment } from "../../api/events";
import { clipAudio, clipIdOf } from "../../api/voice";
import { Icon } from "../common/Icon";

/** The audio attachment of a voice message, if it has one this app can fetch. */
export function audioAttachment(struct: ContentStruct | null): { clipId: string; seconds: number | null } | null {
  const segment = (struct?.segments ?? []).find((s: Segment) => s.type === "attachment" && s["kind"] === "audio");
  const clipId = clipIdOf(segment?.["uri"]);
  if (!segment || !clipId) return null;
  const given = segment["duration_s"];
  const described = /([\d.]+)\s*s\b/.exec(String(segment["description"] ?? ""));
  const seconds = typeof given === "number" ? given : described ? Number(described[1]) : null;
  return { clipId, seconds: seconds !== null && Number.isFinite(seconds) ? seconds : null };
}

/** A voice message's badge (with its length) and, on request, its recording: fetched with the
 *  session (so it is refreshed on a 401 like every call) into a Blob URL for <audio controls>. */
export function VoiceAttachment({ struct }: { struct: ContentStruct | null }) {
  const clip = audioAttachment(struct);
  const [url, setUrl] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const player = useRef<HTMLAudioElement>(null);

  useEffect(() => () => {
    if (url) URL.revokeObjectURL(url);
  }, [url]);
  useEffect(() => {
    if (url) void player.current?.play?.()?.catch(() => undefined); // the controls are there if autoplay is refused
    player.current?.focus();
  }, [url]);

  if (!clip) return null;
  const load = async () => {
    setLoading(true);
    setError(null);
    try {
      setUrl(URL.createObjectURL(await clipAudio(clip.clipId)));
    } catch (e) {
      setError(userMessage(e));
    } finally {
      setLoading(false);
    }
  };
  const length = clip.seconds !== null ? `, ${clip.seconds.toFixed(1)} s` : "";
  return (
    <div class="voice-attachment">
      <span class="voice-badge">
        <Icon name="mic" /> Voice message{length}
      </span>
      {url ? (
        <audio ref={player} controls src={url} aria-label="Your recording" />
      ) : (
        <button type="button" class="link-button small" disabled={loading} onClick={() => void load()}>
          {loading ? "Loading the recording…" : "Play recording"}
        </button>
      )}
      {error && (
        <span class="message-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
