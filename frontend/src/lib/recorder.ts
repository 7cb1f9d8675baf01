// Recording one voice message from the microphone with MediaRecorder. Opus in WebM is asked
// for first (small, and what Chromium and Firefox record natively; the voice service decodes
// any container), then whatever the browser offers.

export const PREFERRED_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];

export interface Recording {
  blob: Blob;
  seconds: number;
}

/** Why recording cannot start, in words for the user. */
export class RecorderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecorderError";
  }
}

export function supportedType(isSupported: (type: string) => boolean): string | null {
  return PREFERRED_TYPES.find((t) => isSupported(t)) ?? null;
}

function refusal(error: unknown): RecorderError {
  const name = error instanceof DOMException || error instanceof Error ? error.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") {
    return new RecorderError("Microphone access was refused. Allow it in the browser's site settings, then try again.");
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") return new RecorderError("No microphone was found.");
  if (name === "NotReadableError") return new RecorderError("The microphone is in use by another program.");
  return new RecorderError("The microphone could not be started.");
}

/** A recording in progress: `stop()` gives the clip, `cancel()` throws it away. Either one
 *  releases the microphone. */
export class VoiceRecorder {
  private readonly chunks: Blob[] = [];
  private readonly startedAt = performance.now();
  private readonly ended: Promise<void>;
  private cancelled = false;

  private constructor(private readonly stream: MediaStream, private readonly recorder: MediaRecorder) {
    this.ended = new Promise((resolve) => recorder.addEventListener("stop", () => resolve(), { once: true }));
    recorder.addEventListener("dataavailable", (e) => {
      if (!this.cancelled && e.data.size > 0) this.chunks.push(e.data);
    });
    recorder.start(1000);
  }

  /** Asks for the microphone (the browser may prompt) and starts recording. */
  static async start(): Promise<VoiceRecorder> {
    if (typeof MediaRecorder === "undefined" || !navigator.mediaDevices?.getUserMedia) {
      throw new RecorderError("This browser cannot record audio.");
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    } catch (error) {
      throw refusal(error);
    }
    const mimeType = supportedType((t) => MediaRecorder.isTypeSupported(t));
    try {
      return new VoiceRecorder(stream, new MediaRecorder(stream, mimeType ? { mimeType } : {}));
    } catch (error) {
      stream.getTracks().forEach((t) => t.stop());
      throw refusal(error);
    }
  }

  get elapsedS(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  async stop(): Promise<Recording> {
    const seconds = this.elapsedS;
    this.finish();
    await this.ended;
    const type = this.recorder.mimeType || this.chunks[0]?.type || "audio/webm";
    return { blob: new Blob(this.chunks, { type }), seconds };
  }

  cancel(): void {
    this.cancelled = true;
    this.chunks.length = 0;
    this.finish();
  }

  private finish(): void {
    if (this.recorder.state !== "inactive") this.recorder.stop();
    this.stream.getTracks().forEach((t) => t.stop());
  }
}
