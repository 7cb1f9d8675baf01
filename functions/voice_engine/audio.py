"""Audio in and out: decoding what browsers record, and the containers answers are streamed in.

Decoding goes through PyAV (FFmpeg), so webm/opus from MediaRecorder, ogg, wav, mp3 and m4a all
work. It stops as soon as the audio runs past the cap, so a long file costs no more than the cap.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import av
import numpy as np

WHISPER_RATE = 16_000
# Below this peak (16-bit full scale = 1.0) a clip holds no speech: digital silence or a
# muted microphone. Whisper invents words for silence, so it is refused instead.
SILENT_PEAK = 1e-3


class AudioRefused(ValueError):
    """Audio the service will not transcribe; `status` and `code` go into the error envelope."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code


def decode(data: bytes, *, max_seconds: float) -> np.ndarray:
    """Mono float32 samples at 16 kHz, or AudioRefused (empty, not audio, too long)."""
    if not data:
        raise AudioRefused(400, "empty_audio", "the upload is empty")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError) as exc:
        raise AudioRefused(415, "unsupported_audio", "not a readable audio file") from exc
    with container:
        if not container.streams.audio:
            raise AudioRefused(415, "unsupported_audio", "the file holds no audio stream")
        samples = _samples(container, max_seconds)
    if samples.size == 0:
        raise AudioRefused(400, "empty_audio", "the audio holds no samples")
    if float(np.abs(samples).max()) < SILENT_PEAK:
        raise AudioRefused(400, "empty_audio", "the audio is silent")
    return samples


def _samples(container: av.container.InputContainer, max_seconds: float) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=WHISPER_RATE)
    limit = int(max_seconds * WHISPER_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                total += chunk.size
                if total > limit:
                    raise AudioRefused(
                        413, "audio_too_long", f"the audio is longer than {max_seconds:g} s"
                    )
                chunks.append(chunk)
        for out in resampler.resample(None):  # what the resampler still holds
            chunks.append(out.to_ndarray().reshape(-1))
    except AudioRefused:
        raise
    except (av.error.FFmpegError, ValueError) as exc:
        raise AudioRefused(415, "unsupported_audio", "the audio could not be decoded") from exc
    if not chunks:
        return np.zeros(0, np.float32)
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def wav_header(sample_rate: int) -> bytes:
    """A RIFF/WAVE header for 16-bit mono PCM of unknown length (sizes 0xFFFFFFFF), the usual
    form for a WAV that is streamed while it is made; browsers and FFmpeg play it."""
    unknown = 0xFFFFFFFF
    return b"".join(
        [
            b"RIFF", struct.pack("<I", unknown), b"WAVE",
            b"fmt ", struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16),
            b"data", struct.pack("<I", unknown),
        ]
    )  # fmt: skip


class OggOpusEncoder:
    """16-bit mono PCM in, Ogg/Opus bytes out as pages fill: feed a sentence, send what came."""

    def __init__(self, sample_rate: int):
        self._out = io.BytesIO()
        # Pages of at most 100 ms, each written out as it is cut (no 32 KiB I/O buffer), so
        # a sentence's audio leaves with the sentence.
        self._container = av.open(
            self._out, mode="w", format="ogg", buffer_size=4096,
            options={"page_duration": "100000", "flush_packets": "1"},
        )  # fmt: skip
        self._stream = self._container.add_stream("libopus", rate=48_000, layout="mono")
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        self._rate = sample_rate
        self._pts = 0

    def feed(self, pcm: bytes) -> bytes:
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += frame.samples
        for resampled in self._resampler.resample(frame):
            self._container.mux(self._stream.encode(resampled))
        return self._take()

    def close(self) -> bytes:
        for resampled in self._resampler.resample(None):
            self._container.mux(self._stream.encode(resampled))
        self._container.mux(self._stream.encode(None))
        self._container.close()
        return self._take()

    def _take(self) -> bytes:
        data = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        return data


def chunks_of(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
