"""Small facts about audio bytes, without decoding them (the voice service decodes): which
container a recording is, so it is stored and served with its real type whatever the client
declared, and the sizes a streamed WAV leaves unknown."""

from __future__ import annotations

import struct

# (media type, file extension) of each container by its first bytes.
_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    (b"OggS", 0, "audio/ogg", "ogg"),
    (b"\x1a\x45\xdf\xa3", 0, "audio/webm", "webm"),  # EBML: webm (MediaRecorder), matroska
    (b"fLaC", 0, "audio/flac", "flac"),
    (b"ID3", 0, "audio/mpeg", "mp3"),
    (b"ftyp", 4, "audio/mp4", "m4a"),
)
UNKNOWN = ("application/octet-stream", "bin")
WAV_HEADER_BYTES = 44


def sniff(data: bytes) -> tuple[str, str]:
    """(media type, extension) of the audio container `data` starts with; UNKNOWN when the
    bytes name none of the usual ones (the engine may still have decoded them)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav", "wav"
    for magic, offset, media, ext in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return media, ext
    if len(data) >= 2 and data[0] == 0xFF:
        if data[1] & 0xF6 == 0xF0:  # ADTS frame sync, layer 0: raw AAC
            return "audio/aac", "aac"
        if data[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
            return "audio/mpeg", "mp3"
    return UNKNOWN


def finished_wav(data: bytes) -> bytes:
    """A streamed WAV (16-bit PCM, sizes 0xFFFFFFFF because they were unknown when the header
    left) with its real RIFF and data sizes, as a stored file should have them. Assumes the
    voice service's canonical 44-byte header."""
    if len(data) < WAV_HEADER_BYTES or data[:4] != b"RIFF" or data[36:40] != b"data":
        raise ValueError("not a canonical streamed WAV")
    pcm = len(data) - WAV_HEADER_BYTES
    return b"".join([data[:4], struct.pack("<I", len(data) - 8), data[8:40],
                     struct.pack("<I", pcm), data[WAV_HEADER_BYTES:]])  # fmt: skip


def wav_duration_s(data: bytes) -> float:
    """Seconds of a canonical 16-bit PCM WAV (from its header's rate and channels)."""
    if len(data) < WAV_HEADER_BYTES:
        return 0.0
    channels, rate = struct.unpack("<HI", data[22:28])
    bits = struct.unpack("<H", data[34:36])[0]
    frame = max(1, channels * bits // 8)
    return (len(data) - WAV_HEADER_BYTES) / frame / max(1, rate)


def description(duration_s: float) -> str:
    """How a voice message's attachment is described (also what a screen reader says)."""
    return f"voice message, {duration_s:.1f} s"
