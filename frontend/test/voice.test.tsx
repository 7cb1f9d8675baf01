// Voice in the app, in a DOM with a fake microphone, MediaRecorder, Web Audio and API: record →
// transcript in the composer → a voice turn; refusals; cancel; the limit; reading an answer
// aloud (and stopping); a voice message's badge and recording; the default voice setting.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StreamingTurn, TurnEnd } from "../src/api/stream";
import { Composer } from "../src/components/chat/Composer";
import { MicButton } from "../src/components/chat/MicButton";
import { SpeakButton } from "../src/components/chat/SpeakButton";
import { VoiceAttachment } from "../src/components/chat/VoiceAttachment";
import { VoicePanel } from "../src/components/settings/VoicePanel";
import { composerText, resetChat, streams } from "../src/state/chat";
import { localMessage } from "../src/state/messages";
import { setAudioOut, speaking, stopSpeaking, voiceClip } from "../src/state/voice";
import { fail, ok } from "./helpers";
import { pcm, wavHeader } from "./wav";

let root: HTMLElement;
beforeEach(() => {
  root = document.createElement("div");
  document.body.appendChild(root);
  resetChat();
  composerText.value = "";
  voiceClip.value = null;
});
afterEach(() => {
  act(() => render(null, root));
  root.remove();
  stopSpeaking();
  vi.unstubAllGlobals();
});

const flush = async (n = 6) => {
  for (let i = 0; i < n; i++) await act(async () => void (await new Promise((r) => setTimeout(r, 0))));
};
const button = (name: string) =>
  [...root.querySelectorAll("button")].find((b) => (b.getAttribute("aria-label") ?? b.textContent ?? "").trim() === name) ?? null;
const click = (el: Element | null) => act(() => void (el as HTMLButtonElement).click());
const mic = () => button("Record a voice message")!;

/** Routes by "METHOD /path"; records each call (FormData bodies as they are). */
function api(routes: Record<string, (init: RequestInit) => Response | Promise<Response>>) {
  const calls: { key: string; init: RequestInit }[] = [];
  vi.stubGlobal("fetch", vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const key = `${init.method ?? "GET"} ${new URL(String(input), "http://app.test").pathname}`;
    calls.push({ key, init });
    const route = routes[key];
    return route ? route(init) : fail(404, "not_found", `no ${key}`);
  }));
  return calls;
}

/** A microphone and MediaRecorder stand-in: the "recording" is a fixed set of bytes. */
function fakeMicrophone({ refuse }: { refuse?: string } = {}) {
  const track = { stop: vi.fn() };
  const getUserMedia = vi.fn(async () => {
    if (refuse) throw new DOMException("refused", refuse);
    return { getTracks: () => [track] } as unknown as MediaStream;
  });
  vi.stubGlobal("navigator", { ...navigator, mediaDevices: { getUserMedia } });
  const made: FakeRecorder[] = [];
  class FakeRecorder extends EventTarget {
    static isTypeSupported = (t: string) => t === "audio/webm;codecs=opus";
    state: "inactive" | "recording" = "inactive";
    mimeType: string;
    constructor(_stream: MediaStream, options: { mimeType?: string }) {
      super();
      this.mimeType = options.mimeType ?? "";
      made.push(this);
    }
    start() {
      this.state = "recording";
    }
    stop() {
      this.state = "inactive";
      queueMicrotask(() => {
        const data = Object.assign(new Event("dataavailable"), { data: new Blob([new Uint8Array([0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3])], { type: this.mimeType }) });
        this.dispatchEvent(data);
        this.dispatchEvent(new Event("stop"));
      });
    }
  }
  vi.stubGlobal("MediaRecorder", FakeRecorder);
  return { getUserMedia, track, made };
}

const TRANSCRIPT = { clip_id: "c1", text: "How long do I boil an egg?", language: "en", duration_s: 4.2, segments: [], mime: "audio/webm", audio_uri: "/v1/voice/clips/c1/audio" };

describe("the microphone", () => {
  it("records, transcribes, puts the transcript in the composer for review, and sends a voice turn", async () => {
    const mic_ = fakeMicrophone();
    const calls = api({ "POST /v1/voice/transcribe": () => ok(TRANSCRIPT, 201) });
    const start = vi.spyOn(streams, "start").mockImplementation(() => ({
      done: new Promise<TurnEnd>(() => {}), cancel: vi.fn(), transport: () => "ws",
    }) satisfies StreamingTurn);
    act(() => render(<Composer />, root));
    expect(mic().getAttribute("aria-pressed")).toBe("false");

    click(mic());
    await flush();
    expect(mic_.getUserMedia).toHaveBeenCalledOnce();
    expect(mic_.made[0]!.mimeType).toBe("audio/webm;codecs=opus");
    expect(mic().getAttribute("aria-pressed")).toBe("true");
    expect(root.querySelector(".rec-indicator")?.textContent).toContain("/ 2:00");
    expect(button("Cancel recording")).not.toBeNull();

    click(mic()); // stop
    await flush();
    expect(calls.map((c) => c.key)).toEqual(["POST /v1/voice/transcribe"]);
    const form = calls[0]!.init.body as FormData;
    const file = form.get("file") as File;
    expect(file.type).toBe("audio/webm;codecs=opus");
    expect(file.name).toBe("voice.webm");
    expect(file.size).toBe(7);
    expect(mic_.track.stop).toHaveBeenCalled(); // the microphone is released

    const box = root.querySelector("textarea")!;
    expect(box.value).toBe(TRANSCRIPT.text);
    expect(document.activeElement).toBe(box);
    expect(root.querySelector('[role="status"]')?.textContent).toContain("Transcript ready");
    expect(root.querySelector(".voice-clip")?.textContent).toContain("Voice message, 4.2 s");

    // Edited before sending: the edited text is what is sent, with the clip.
    act(() => {
      box.value = "How long do I boil a large egg?";
      box.dispatchEvent(new Event("input", { bubbles: true }));
    });
    act(() => void box.closest("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })));
    expect(start).toHaveBeenCalledOnce();
    expect(start.mock.calls[0]![0].message).toEqual({ content: "How long do I boil a large egg?", mode: "voice", clip_id: "c1" });
    expect(voiceClip.value).toBeNull();
    expect(box.value).toBe("");
  });

  it("a refused voice message goes back into the composer with its clip", async () => {
    let finish: (end: TurnEnd) => void = () => {};
    vi.spyOn(streams, "start").mockImplementation(() => ({
      done: new Promise<TurnEnd>((resolve) => (finish = resolve)), cancel: vi.fn(), transport: () => "ws",
    }) satisfies StreamingTurn);
    act(() => render(<Composer />, root));
    act(() => {
      voiceClip.value = { clipId: "c1", durationS: 4.2, mime: "audio/webm" };
      composerText.value = TRANSCRIPT.text; // after the draft is restored on mount
    });
    const box = root.querySelector("textarea")!;
    act(() => void box.closest("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })));
    expect(voiceClip.value).toBeNull();
    await act(async () => finish({ kind: "error", data: { code: "rate_limited", message: "Too many requests." } }));
    await flush();
    expect(composerText.value).toBe(TRANSCRIPT.text);
    expect(voiceClip.value).toEqual({ clipId: "c1", durationS: 4.2, mime: "audio/webm" });
  });

  it("says so when the microphone is refused", async () => {
    fakeMicrophone({ refuse: "NotAllowedError" });
    const calls = api({});
    act(() => render(<MicButton disabled={false} onTranscript={() => {}} />, root));
    click(mic());
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("Microphone access was refused");
    expect(mic().getAttribute("aria-pressed")).toBe("false");
    expect(calls).toHaveLength(0);
  });

  it("shows the API's refusal (the error envelope) and keeps no clip", async () => {
    fakeMicrophone();
    api({ "POST /v1/voice/transcribe": () => fail(415, "unsupported_audio", "The upload is not audio that can be decoded.") });
    const onTranscript = vi.fn();
    act(() => render(<MicButton disabled={false} onTranscript={onTranscript} />, root));
    mic().focus();
    click(mic());
    await flush();
    click(mic());
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toBe("The upload is not audio that can be decoded.");
    expect(onTranscript).not.toHaveBeenCalled();
    expect(voiceClip.value).toBeNull();
    expect(mic().getAttribute("aria-disabled")).toBe("false");
    expect(document.activeElement).toBe(mic()); // the keyboard user is where they were
  });

  it("cancel throws the recording away: nothing uploaded, the microphone released", async () => {
    const mic_ = fakeMicrophone();
    const calls = api({});
    act(() => render(<MicButton disabled={false} onTranscript={() => {}} />, root));
    click(mic());
    await flush();
    click(button("Cancel recording"));
    await flush();
    expect(calls).toHaveLength(0);
    expect(mic_.track.stop).toHaveBeenCalled();
    expect(mic().getAttribute("aria-pressed")).toBe("false");
    expect(document.activeElement).toBe(mic());
    expect(root.querySelector('[role="status"]')?.textContent).toBe("Recording discarded.");
  });

  it("Escape while recording cancels too", async () => {
    const mic_ = fakeMicrophone();
    const calls = api({});
    act(() => render(<MicButton disabled={false} onTranscript={() => {}} />, root));
    click(mic());
    await flush();
    act(() => void mic().dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true })));
    await flush();
    expect(calls).toHaveLength(0);
    expect(mic_.track.stop).toHaveBeenCalled();
    expect(mic().getAttribute("aria-pressed")).toBe("false");
  });

  it("stops by itself at the two-minute limit and transcribes", async () => {
    fakeMicrophone();
    const calls = api({ "POST /v1/voice/transcribe": () => ok(TRANSCRIPT, 201) });
    let now = 1000;
    vi.spyOn(performance, "now").mockImplementation(() => now);
    const onTranscript = vi.fn();
    act(() => render(<MicButton disabled={false} onTranscript={onTranscript} />, root));
    click(mic());
    await flush();
    now += 119_000;
    await act(() => new Promise((r) => setTimeout(r, 300)));
    expect(calls).toHaveLength(0);
    expect(root.querySelector(".rec-indicator")?.textContent).toContain("1:59 / 2:00");
    now += 1_000;
    await act(() => new Promise((r) => setTimeout(r, 300)));
    await flush();
    expect(calls.map((c) => c.key)).toEqual(["POST /v1/voice/transcribe"]);
    expect(onTranscript).toHaveBeenCalledWith(TRANSCRIPT.text);
  });

  it("discarding the voice message clears the clip and its transcript, and deletes the recording", async () => {
    const calls = api({ "DELETE /v1/voice/clips/c1": () => ok({ deleted: true }) });
    act(() => render(<Composer />, root));
    act(() => {
      voiceClip.value = { clipId: "c1", durationS: 4.2, mime: "audio/webm" };
      composerText.value = TRANSCRIPT.text;
    });
    expect(root.querySelector("textarea")!.value).toBe(TRANSCRIPT.text);
    click(button("Discard voice message"));
    expect(voiceClip.value).toBeNull();
    expect(composerText.value).toBe("");
    expect(root.querySelector(".voice-clip")).toBeNull();
    expect(root.querySelector("textarea")!.value).toBe("");
    expect(document.activeElement).toBe(root.querySelector("textarea"));
    await flush();
    expect(calls.map((c) => c.key)).toEqual(["DELETE /v1/voice/clips/c1"]);
  });
});

/** Web Audio stand-in: the buffers started, ended on request. */
function fakeAudioOut() {
  const started: number[] = [];
  const ends: (() => void)[] = [];
  const stops = vi.fn();
  const close = vi.fn(async () => undefined);
  setAudioOut(() => ({
    currentTime: 0,
    destination: {} as AudioNode,
    close,
    createBuffer: (_c: number, length: number, rate: number) =>
      ({ duration: length / rate, getChannelData: () => new Float32Array(length) }) as unknown as AudioBuffer,
    createBufferSource: () => {
      const target = new EventTarget();
      ends.push(() => target.dispatchEvent(new Event("ended")));
      return {
        buffer: null, connect: () => {}, addEventListener: target.addEventListener.bind(target),
        start: (at: number) => started.push(at),
        stop: () => {
          stops();
          target.dispatchEvent(new Event("ended"));
        },
      } as unknown as AudioBufferSourceNode;
    },
  }));
  return { started, ends, stops, close };
}

describe("reading an answer aloud", () => {
  const answer = localMessage({ id: "a1", parentId: "q1", seq: 2, role: "assistant", content: "Boil it **nine** minutes [1].", status: "done" });

  it("streams the speech and plays it as it comes; the toggle is pressed until it ends", async () => {
    const audio = fakeAudioOut();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const calls = api({
      "POST /v1/voice/speak": () => new Response(new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) }), {
        status: 200, headers: { "content-type": "audio/wav", "x-sample-rate": "22050" },
      }),
    });
    act(() => render(<SpeakButton message={answer} />, root));
    const toggle = button("Read aloud")!;
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
    click(toggle);
    await flush();
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ text: "Boil it nine minutes .", format: "wav" });
    expect(toggle.getAttribute("aria-pressed")).toBe("true");

    await act(async () => {
      controller.enqueue(wavHeader(22050));
      controller.enqueue(pcm(new Array(5000).fill(1000))); // one buffer's worth: plays now
    });
    await flush();
    expect(audio.started).toHaveLength(1);
    expect(speaking.value).toEqual({ messageId: "a1", playing: true });
    await act(async () => controller.close());
    await flush();
    expect(toggle.getAttribute("aria-pressed")).toBe("true"); // still playing
    act(() => audio.ends.forEach((end) => end()));
    await flush();
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
    expect(audio.close).toHaveBeenCalled();
  });

  it("pressed again, stops: the download is aborted and the sound silenced", async () => {
    const audio = fakeAudioOut();
    let signal: AbortSignal | undefined;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    api({
      "POST /v1/voice/speak": (init) => {
        signal = init.signal ?? undefined;
        return new Response(new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) }), { status: 200, headers: { "content-type": "audio/wav" } });
      },
    });
    act(() => render(<SpeakButton message={answer} />, root));
    click(button("Read aloud"));
    await flush();
    await act(async () => controller.enqueue(new Uint8Array([...wavHeader(22050), ...pcm(new Array(5000).fill(1))])));
    await flush();
    expect(audio.started).toHaveLength(1);
    click(button("Read aloud"));
    await flush();
    expect(signal?.aborted).toBe(true);
    expect(audio.stops).toHaveBeenCalled();
    expect(speaking.value).toBeNull();
    expect(button("Read aloud")!.getAttribute("aria-pressed")).toBe("false");
  });

  it("shows the API's refusal", async () => {
    fakeAudioOut();
    api({ "POST /v1/voice/speak": () => fail(503, "voice_unavailable", "The voice service is not running.") });
    act(() => render(<SpeakButton message={answer} />, root));
    click(button("Read aloud"));
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toBe("The voice service is not running.");
    expect(button("Read aloud")!.getAttribute("aria-pressed")).toBe("false");
  });
});

describe("a voice message in the thread", () => {
  const struct = {
    segments: [
      { type: "text", text: "How long?" },
      { type: "attachment", kind: "audio", uri: "/v1/voice/clips/c1/audio", mime: "audio/webm", description: "voice message, 4.2 s" },
    ],
  };

  it("shows a badge with the length and plays the recording fetched with the session", async () => {
    const calls = api({ "GET /v1/voice/clips/c1/audio": () => new Response(new Uint8Array([1, 2, 3]), { status: 200, headers: { "content-type": "audio/webm" } }) });
    const made: Blob[] = [];
    vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: (b: Blob) => (made.push(b), "blob:clip-1"), revokeObjectURL: vi.fn() }));
    const play = vi.spyOn(HTMLMediaElement.prototype, "play").mockResolvedValue(undefined);
    act(() => render(<VoiceAttachment struct={struct} />, root));
    expect(root.querySelector(".voice-badge")?.textContent).toContain("Voice message, 4.2 s");
    click(button("Play recording"));
    await flush();
    expect(calls[0]!.init.credentials).toBe("same-origin");
    expect(made[0]!.size).toBe(3);
    const audio = root.querySelector("audio")!;
    expect(audio.getAttribute("src")).toBe("blob:clip-1");
    expect(audio.hasAttribute("controls")).toBe(true);
    expect(play).toHaveBeenCalledOnce();
  });

  it("says why the recording cannot be played", async () => {
    api({});
    act(() => render(<VoiceAttachment struct={struct} />, root));
    click(button("Play recording"));
    await flush();
    expect(root.querySelector('[role="alert"]')?.textContent).toContain("no GET /v1/voice/clips/c1/audio");
  });

  it("ignores attachments that are not this API's audio clips", () => {
    const other = { segments: [{ type: "attachment", kind: "audio", uri: "https://elsewhere.test/a.webm" }, { type: "attachment", kind: "image", uri: "/v1/voice/clips/c1/audio" }] };
    act(() => render(<VoiceAttachment struct={other} />, root));
    expect(root.innerHTML).toBe("");
  });
});

describe("the Voice settings", () => {
  const VOICES = { voices: [{ id: "en_US-joe-medium", language: "en_US", sample_rate: 22050 }, { id: "en_GB-alan-low", language: "en_GB", sample_rate: 16000 }], default: "en_US-joe-medium" };

  it("lists the voices, shows the saved one and saves a new choice", async () => {
    const calls = api({
      "GET /v1/voice/voices": () => ok(VOICES),
      "GET /v1/me/settings": () => ok({ default_voice: "en_GB-alan-low" }),
      "PATCH /v1/me/settings": (init) => ok(JSON.parse(String(init.body))),
    });
    act(() => render(<VoicePanel />, root));
    await flush();
    const select = root.querySelector("select")!;
    expect([...select.options].map((o) => o.value)).toEqual(["en_US-joe-medium", "en_GB-alan-low"]);
    expect(select.value).toBe("en_GB-alan-low");
    act(() => {
      select.value = "en_US-joe-medium";
      select.dispatchEvent(new Event("change", { bubbles: true }));
    });
    act(() => void select.closest("form")!.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })));
    await flush();
    const patch = calls.find((c) => c.key === "PATCH /v1/me/settings")!;
    expect(JSON.parse(String(patch.init.body))).toEqual({ default_voice: "en_US-joe-medium" });
    expect(root.querySelector('[role="status"]')?.textContent).toContain("Voice saved");
  });

  it("without saved settings, starts from the service's default and says why", async () => {
    api({ "GET /v1/voice/voices": () => ok(VOICES) });
    act(() => render(<VoicePanel />, root));
    await flush();
    expect(root.querySelector("select")!.value).toBe("en_US-joe-medium");
    expect(root.textContent).toContain("Your saved choice could not be read");
  });
});
