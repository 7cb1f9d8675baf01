// Playing a streamed WAV as it arrives. The voice service synthesises an answer sentence by
// sentence and streams `audio/wav` whose RIFF and data sizes are unknown (0xFFFFFFFF), so
// neither an <audio> element (it wants the whole file, and cannot send the session the way
// fetch does) nor decodeAudioData (whole files only) can start early. Instead: parse the header,
// turn each network chunk's 16-bit little-endian mono PCM into floats (a sample may be split
// across two chunks: the odd byte waits for the next one), and schedule AudioBuffers back to
// back on a Web Audio clock.

export interface WavFormat {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** Bytes before the first sample. */
  dataOffset: number;
}

export class WavFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WavFormatError";
  }
}

// A header longer than this is not the voice service's (it writes 44 bytes).
const MAX_HEADER_BYTES = 4096;
const ascii = (b: Uint8Array, at: number) => String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);

/** The format of a WAV whose first `bytes` hold the whole header, or null when more bytes are
 *  needed. Throws WavFormatError for something that is not 16-bit PCM WAV. */
export function parseWavHeader(bytes: Uint8Array): WavFormat | null {
  if (bytes.length < 12) return null;
  if (ascii(bytes, 0) !== "RIFF" || ascii(bytes, 8) !== "WAVE") throw new WavFormatError("not a WAV stream");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: Omit<WavFormat, "dataOffset"> | null = null;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = ascii(bytes, at);
    const size = view.getUint32(at + 4, true);
    if (id === "data") {
      if (!format) throw new WavFormatError("WAV data before its format");
      return { ...format, dataOffset: at + 8 };
    }
    // Only the data chunk may have an unknown size (it is the stream's last chunk).
    if (size === 0xffffffff) throw new WavFormatError(`WAV chunk "${id}" of unknown size`);
    if (id === "fmt ") {
      if (at + 8 + 16 > bytes.length) return null;
      const audioFormat = view.getUint16(at + 8, true);
      format = {
        channels: view.getUint16(at + 10, true),
        sampleRate: view.getUint32(at + 12, true),
        bitsPerSample: view.getUint16(at + 22, true),
      };
      if (audioFormat !== 1 || format.bitsPerSample !== 16 || format.channels !== 1) {
        throw new WavFormatError("only 16-bit mono PCM WAV is played");
      }
    }
    at += 8 + size + (size % 2); // chunks are padded to an even length
  }
  if (bytes.length > MAX_HEADER_BYTES) throw new WavFormatError("no WAV data chunk");
  return null;
}

/** Turns a WAV byte stream, in chunks of any size, into float samples in [-1, 1). */
export class WavStreamDecoder {
  format: WavFormat | null = null;
  private head = new Uint8Array(0);
  /** The first byte of a sample whose second byte is in the next chunk. */
  private carry: number | null = null;

  /** The samples completed by `chunk` (empty while the header is still arriving). */
  push(chunk: Uint8Array): Float32Array {
    let pcm = chunk;
    if (!this.format) {
      const joined = new Uint8Array(this.head.length + chunk.length);
      joined.set(this.head);
      joined.set(chunk, this.head.length);
      const format = parseWavHeader(joined);
      if (!format) {
        this.head = joined;
        return new Float32Array(0);
      }
      this.format = format;
      this.head = new Uint8Array(0);
      pcm = joined.subarray(format.dataOffset);
    }
    return this.samples(pcm);
  }

  private samples(pcm: Uint8Array): Float32Array {
    const lead = this.carry === null ? 0 : 1;
    const count = Math.floor((pcm.length + lead) / 2);
    const out = new Float32Array(count);
    let i = 0;
    let at = 0;
    if (this.carry !== null && pcm.length > 0) {
      out[i++] = toFloat(this.carry | (pcm[0]! << 8));
      this.carry = null;
      at = 1;
    }
    for (; at + 1 < pcm.length; at += 2) out[i++] = toFloat(pcm[at]! | (pcm[at + 1]! << 8));
    if (at < pcm.length) this.carry = pcm[at]!;
    return out;
  }
}

function toFloat(u16: number): number {
  const signed = u16 >= 0x8000 ? u16 - 0x10000 : u16;
  return signed / 0x8000;
}

/** The part of Web Audio the player uses (a fake one in tests). */
export interface AudioOut {
  readonly currentTime: number;
  createBuffer(channels: number, length: number, sampleRate: number): AudioBuffer;
  createBufferSource(): AudioBufferSourceNode;
  readonly destination: AudioNode;
  close(): Promise<void>;
}

export interface PlayOptions {
  /** Fallback when the header's rate is missing (the X-Sample-Rate header). */
  sampleRate?: number;
  /** Samples gathered before a buffer is scheduled (tiny buffers would click). */
  minSamples?: number;
  /** Milliseconds without new bytes after which fewer samples are scheduled all the same: the
   *  end of a sentence must not wait for the next one to be synthesised. */
  idleMs?: number;
  /** Seconds of head start before the first buffer plays. */
  leadS?: number;
}

/** Plays a streamed WAV body as it arrives; `done` settles once the last sample has played
 *  (or at once when stopped). `stop()` cancels the read and silences what is scheduled. */
export class PcmStreamPlayer {
  readonly done: Promise<void>;
  private readonly decoder = new WavStreamDecoder();
  private readonly sources: AudioBufferSourceNode[] = [];
  private pending: Float32Array[] = [];
  private pendingLength = 0;
  private nextTime = 0;
  private stopped = false;
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(body: ReadableStream<Uint8Array>, private readonly out: AudioOut, private readonly options: PlayOptions = {}) {
    this.done = this.run(body);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.clearIdle();
    void this.reader?.cancel().catch(() => undefined);
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // not started yet or already ended
      }
    }
    void this.out.close().catch(() => undefined);
  }

  private async run(body: ReadableStream<Uint8Array>): Promise<void> {
    this.reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await this.reader.read();
        if (this.stopped) return;
        if (done) break;
        this.queue(this.decoder.push(value));
      }
      this.clearIdle();
      this.flush();
      await this.lastEnded();
    } finally {
      if (!this.stopped) void this.out.close().catch(() => undefined);
    }
  }

  private queue(samples: Float32Array): void {
    if (samples.length === 0) return;
    this.pending.push(samples);
    this.pendingLength += samples.length;
    if (this.pendingLength >= (this.options.minSamples ?? 4096)) this.flush();
    this.clearIdle();
    if (this.pendingLength > 0) this.idleTimer = setTimeout(() => this.flush(), this.options.idleMs ?? 60);
  }

  private clearIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private flush(): void {
    if (this.stopped) return;
    if (this.pendingLength === 0) return;
    const rate = this.decoder.format?.sampleRate || this.options.sampleRate || 22050;
    const buffer = this.out.createBuffer(1, this.pendingLength, rate);
    const channel = buffer.getChannelData(0);
    let at = 0;
    for (const part of this.pending) {
      channel.set(part, at);
      at += part.length;
    }
    this.pending = [];
    this.pendingLength = 0;
    const source = this.out.createBufferSource();
    source.buffer = buffer;
    source.connect(this.out.destination);
    // Back to back; after a stall (the network was slower than playback) start a little ahead.
    const start = Math.max(this.nextTime, this.out.currentTime + (this.options.leadS ?? 0.05));
    source.start(start);
    this.nextTime = start + buffer.duration;
    this.sources.push(source);
  }

  private lastEnded(): Promise<void> {
    const last = this.sources[this.sources.length - 1];
    if (!last || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      last.addEventListener("ended", () => resolve(), { once: true });
    });
  }
}
