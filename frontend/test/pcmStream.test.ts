// The streamed WAV player: the header with unknown sizes, samples split across chunks at any
// byte, and AudioBuffers scheduled back to back while the body is still arriving.
import { describe, expect, it, vi } from "vitest";
import { type AudioOut, parseWavHeader, PcmStreamPlayer, WavFormatError, WavStreamDecoder } from "../src/lib/pcmStream";
import { speakableText } from "../src/lib/speakable";
import { pcm, wavHeader } from "./wav";

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

// Values whose two bytes differ (a swapped or misaligned pair would show), extremes included.
const SAMPLES = [0, 1, -1, 0x1234, -0x1234, 32767, -32768, 0x0102, -0x0201, 255, 256, -256, 12345, -12345, 7];
const expected = SAMPLES.map((s) => s / 32768);

function decodeInChunks(bytes: Uint8Array, cuts: number[]): number[] {
  const decoder = new WavStreamDecoder();
  const out: number[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...decoder.push(bytes.subarray(from, cut)));
    from = cut;
  }
  return out;
}

describe("parseWavHeader", () => {
  it("reads the voice service's header (unknown sizes) and where the samples start", () => {
    expect(parseWavHeader(wavHeader(22050))).toEqual({ sampleRate: 22050, channels: 1, bitsPerSample: 16, dataOffset: 44 });
  });

  it("skips other chunks (odd-sized ones padded) before the data", () => {
    const header = wavHeader(16000, new Uint8Array([1, 2, 3]));
    expect(parseWavHeader(header)).toEqual({ sampleRate: 16000, channels: 1, bitsPerSample: 16, dataOffset: 56 });
  });

  it("waits for more bytes while the header is incomplete", () => {
    const header = wavHeader(22050);
    for (const n of [0, 4, 11, 12, 20, 30, 40, 43]) expect(parseWavHeader(header.subarray(0, n))).toBeNull();
  });

  it("refuses what is not 16-bit mono PCM WAV", () => {
    expect(() => parseWavHeader(new TextEncoder().encode('{"error": {"code": "x"}}'))).toThrow(WavFormatError);
    const eightBit = wavHeader(22050);
    new DataView(eightBit.buffer).setUint16(34, 8, true);
    expect(() => parseWavHeader(eightBit)).toThrow(/16-bit mono/);
    const stereo = wavHeader(22050);
    new DataView(stereo.buffer).setUint16(22, 2, true);
    expect(() => parseWavHeader(stereo)).toThrow(/16-bit mono/);
  });
});

describe("WavStreamDecoder", () => {
  const wav = concat(wavHeader(22050), pcm(SAMPLES));

  it("decodes the whole stream in one chunk", () => {
    expect(decodeInChunks(wav, [])).toEqual(expected);
  });

  it("gives the same samples for every single split point (header and odd byte splits)", () => {
    for (let cut = 0; cut <= wav.length; cut++) expect(decodeInChunks(wav, [cut]), `cut at ${cut}`).toEqual(expected);
  });

  it("decodes a stream that arrives one byte at a time, and in odd three-byte pieces", () => {
    const ones = Array.from({ length: wav.length - 1 }, (_, i) => i + 1);
    expect(decodeInChunks(wav, ones)).toEqual(expected);
    const threes = Array.from({ length: Math.floor((wav.length - 1) / 3) }, (_, i) => (i + 1) * 3);
    expect(decodeInChunks(wav, threes)).toEqual(expected);
  });

  it("keeps the format once the header is read, and nothing before it", () => {
    const decoder = new WavStreamDecoder();
    expect(decoder.push(wav.subarray(0, 30))).toHaveLength(0);
    expect(decoder.format).toBeNull();
    expect(decoder.push(wav.subarray(30, 47))).toHaveLength(1); // 3 bytes of PCM: one sample and a half
    expect(decoder.format?.sampleRate).toBe(22050);
  });
});

/** A Web Audio stand-in: every buffer made and when each was started. */
function fakeAudio(now = 0) {
  const started: { at: number; samples: number[]; rate: number }[] = [];
  const sources: { stop: ReturnType<typeof vi.fn>; end: () => void }[] = [];
  const out = {
    currentTime: now,
    destination: {} as AudioNode,
    close: vi.fn(async () => undefined),
    createBuffer(_channels: number, length: number, sampleRate: number) {
      const data = new Float32Array(length);
      return { length, sampleRate, duration: length / sampleRate, getChannelData: () => data } as unknown as AudioBuffer;
    },
    createBufferSource() {
      const target = new EventTarget();
      const source = {
        buffer: null as AudioBuffer | null,
        connect: vi.fn(),
        addEventListener: target.addEventListener.bind(target),
        start(at: number) {
          started.push({ at, samples: [...this.buffer!.getChannelData(0)], rate: this.buffer!.sampleRate });
        },
        stop: vi.fn(() => target.dispatchEvent(new Event("ended"))),
      };
      sources.push({ stop: source.stop, end: () => target.dispatchEvent(new Event("ended")) });
      return source as unknown as AudioBufferSourceNode;
    },
  };
  return { out: out as AudioOut & { currentTime: number }, started, sources, close: out.close };
}

function pushStream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  return { body, controller };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("PcmStreamPlayer", () => {
  it("starts playing before the body ends, back to back, at the header's rate", async () => {
    const audio = fakeAudio(10);
    const { body, controller } = pushStream();
    const player = new PcmStreamPlayer(body, audio.out, { minSamples: 4, leadS: 0.05 });
    const first = concat(wavHeader(8000), pcm([100, 200, 300, 400, 500]));
    controller.enqueue(first.subarray(0, 51)); // header + 3.5 samples: nothing to play yet
    await tick();
    expect(audio.started).toHaveLength(0);
    controller.enqueue(first.subarray(51)); // completes 5 samples: one buffer, the body still open
    await tick();
    expect(audio.started).toHaveLength(1);
    expect(audio.started[0]!.at).toBeCloseTo(10.05);
    expect(audio.started[0]!.rate).toBe(8000);
    expect(audio.started[0]!.samples).toEqual([100, 200, 300, 400, 500].map((s) => s / 32768));

    controller.enqueue(pcm([1, 2, 3, 4]));
    controller.enqueue(pcm([5]));
    controller.close();
    await tick();
    expect(audio.started.map((s) => s.samples.length)).toEqual([5, 4, 1]);
    // Each buffer starts where the one before it ends.
    expect(audio.started[1]!.at).toBeCloseTo(10.05 + 5 / 8000, 9);
    expect(audio.started[2]!.at).toBeCloseTo(10.05 + 9 / 8000, 9);

    let finished = false;
    void player.done.then(() => (finished = true));
    await tick();
    expect(finished).toBe(false); // the last buffer is still playing
    audio.sources[2]!.end();
    await tick();
    expect(finished).toBe(true);
    expect(audio.close).toHaveBeenCalled();
  });

  it("plays a short tail when the stream pauses (the next sentence is being synthesised)", async () => {
    const audio = fakeAudio(0);
    const { body, controller } = pushStream();
    new PcmStreamPlayer(body, audio.out, { minSamples: 100, idleMs: 20 });
    controller.enqueue(concat(wavHeader(1000), pcm([1, 2, 3])));
    await tick();
    expect(audio.started).toHaveLength(0); // fewer than minSamples: gathered…
    await new Promise((r) => setTimeout(r, 60));
    expect(audio.started.map((s) => s.samples.length)).toEqual([3]); // …until the stream pauses
  });

  it("after a stall, starts the next buffer from now rather than in the past", async () => {
    const audio = fakeAudio(0);
    const { body, controller } = pushStream();
    new PcmStreamPlayer(body, audio.out, { minSamples: 2, leadS: 0.05 });
    controller.enqueue(concat(wavHeader(1000), pcm([1, 2])));
    await tick();
    audio.out.currentTime = 5; // the network was slower than playback
    controller.enqueue(pcm([3, 4]));
    await tick();
    expect(audio.started.map((s) => s.at)).toEqual([0.05, 5.05]);
  });

  it("stop cancels the download and silences what is scheduled", async () => {
    const audio = fakeAudio(0);
    const cancelled = vi.fn();
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c), cancel: cancelled });
    const player = new PcmStreamPlayer(body, audio.out, { minSamples: 2 });
    controller.enqueue(concat(wavHeader(1000), pcm([1, 2, 3, 4])));
    await tick();
    expect(audio.started).toHaveLength(1);
    player.stop();
    await player.done;
    expect(cancelled).toHaveBeenCalled();
    expect(audio.sources[0]!.stop).toHaveBeenCalled();
    expect(audio.close).toHaveBeenCalled();
  });

  it("fails on a body that is not WAV", async () => {
    const audio = fakeAudio(0);
    const body = new Response("not audio at all, just some text").body!;
    await expect(new PcmStreamPlayer(body, audio.out).done).rejects.toThrow(WavFormatError);
  });
});

describe("speakableText", () => {
  it("keeps the words of Markdown, drops code, links' targets and citation marks", () => {
    const md = "# Eggs\n\nBoil them **nine** minutes [1].\n\n- Use `cold` water\n- See [the guide](https://x.test/a)\n\n```py\nprint(1)\n```\nDone.";
    const spoken = speakableText(md, 4000);
    for (const kept of ["Eggs", "Boil them nine minutes", "Use cold water", "See the guide", "(code omitted)", "Done."]) expect(spoken).toContain(kept);
    for (const gone of ["#", "**", "[1]", "`", "https://", "print(1)", "- "]) expect(spoken).not.toContain(gone);
  });

  it("cuts a long text at a sentence end within the cap", () => {
    const text = "One sentence here. ".repeat(300);
    const cut = speakableText(text, 4000);
    expect(cut.length).toBeLessThanOrEqual(4000);
    expect(cut.endsWith("here.")).toBe(true);
  });
});
