// Voice state: the clip whose transcript is in the composer (sent with the next message as a
// voice turn), and the one answer being read aloud (starting another stops it).
import { signal } from "@preact/signals";
import { MAX_SPEAK_CHARS, speak, type Transcript } from "../api/voice";
import { speakableText } from "../lib/speakable";
import { type AudioOut, PcmStreamPlayer } from "../lib/pcmStream";
import { onSignOut } from "./auth";

export interface VoiceClipRef {
  clipId: string;
  durationS: number;
  mime: string;
}

/** The recording behind the composer's text, until it is sent or cancelled. */
export const voiceClip = signal<VoiceClipRef | null>(null);

export function clipFrom(t: Transcript): VoiceClipRef {
  return { clipId: t.clip_id, durationS: t.duration_s, mime: t.mime };
}

/** The attachment segment a voice message is stored with (shown on the optimistic question). */
export function audioSegment(clip: VoiceClipRef): Record<string, unknown> & { type: string } {
  return {
    type: "attachment",
    kind: "audio",
    uri: `/v1/voice/clips/${encodeURIComponent(clip.clipId)}/audio`,
    mime: clip.mime,
    duration_s: clip.durationS,
    description: `voice message, ${clip.durationS.toFixed(1)} s`,
  };
}

/** The message whose answer is being spoken (or fetched), and why the last attempt failed. */
export const speaking = signal<{ messageId: string; playing: boolean } | null>(null);
export const speakError = signal<{ messageId: string; message: string } | null>(null);

let current: { messageId: string; abort: AbortController; player: PcmStreamPlayer | null } | null = null;

/** Made by the app (tests pass a fake). A new context per answer: it must be created from the
 *  click (autoplay rules) and is closed when the answer ends. */
let createAudioOut: () => AudioOut = () => new AudioContext();
export function setAudioOut(factory: () => AudioOut): void {
  createAudioOut = factory;
}

export function stopSpeaking(): void {
  const playing = current;
  current = null;
  speaking.value = null;
  if (!playing) return;
  playing.abort.abort();
  playing.player?.stop();
}

/** Reads an answer aloud, streaming: playback starts with the first sentence. */
export async function speakAnswer(messageId: string, markdown: string, describe: (error: unknown) => string): Promise<void> {
  stopSpeaking();
  speakError.value = null;
  const text = speakableText(markdown, MAX_SPEAK_CHARS);
  if (!text) return;
  const mine = { messageId, abort: new AbortController(), player: null as PcmStreamPlayer | null };
  current = mine;
  speaking.value = { messageId, playing: false };
  let out: AudioOut | null = null;
  try {
    out = createAudioOut(); // now, within the click: browsers let such a context play
    const response = await speak(text, mine.abort.signal);
    if (current !== mine) return;
    if (!response.body) throw new Error("The answer came without audio.");
    const rate = Number(response.headers.get("x-sample-rate")) || undefined;
    mine.player = new PcmStreamPlayer(response.body, out, rate ? { sampleRate: rate } : {});
    speaking.value = { messageId, playing: true };
    await mine.player.done;
  } catch (error) {
    if (current === mine && !(error instanceof DOMException && error.name === "AbortError")) {
      speakError.value = { messageId, message: describe(error) };
    }
  } finally {
    if (current === mine) {
      current = null;
      speaking.value = null;
    }
    if (!mine.player) void out?.close().catch(() => undefined);
  }
}

onSignOut(() => {
  stopSpeaking();
  voiceClip.value = null;
});
