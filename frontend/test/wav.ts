// Streamed WAV bytes as the voice service writes them (the player's tests).

/** What the voice service writes: RIFF/data sizes 0xFFFFFFFF, 16-bit mono PCM. `extra` adds a
 *  chunk (e.g. LIST) between fmt and data, as other writers do. */
export function wavHeader(rate: number, extra: Uint8Array | null = null): Uint8Array {
  const extraLength = extra ? 8 + extra.length + (extra.length % 2) : 0;
  const bytes = new Uint8Array(44 + extraLength);
  const view = new DataView(bytes.buffer);
  const text = (at: number, s: string) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 0xffffffff, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  let at = 36;
  if (extra) {
    text(at, "LIST");
    view.setUint32(at + 4, extra.length, true);
    bytes.set(extra, at + 8);
    at += extraLength;
  }
  text(at, "data");
  view.setUint32(at + 4, 0xffffffff, true);
  return bytes;
}

export function pcm(samples: number[]): Uint8Array {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  samples.forEach((s, i) => view.setInt16(i * 2, s, true));
  return bytes;
}
