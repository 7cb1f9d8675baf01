"""Audio in and out of the voice service: what is refused before any model runs, and the
streamed containers (a WAV of unknown length, Ogg/Opus fed sentence by sentence)."""

from __future__ import annotations

import numpy as np
import pytest

from functions.voice_engine import audio
from functions.voice_engine.audio import AudioRefused
from tests.voice import tone_wav


def test_decodes_to_mono_16k_float():
    samples = audio.decode(tone_wav(1.0, rate=44_100), max_seconds=10)
    assert samples.dtype == np.float32
    assert abs(samples.size - 16_000) < 200  # resampled
    assert 0.25 < np.abs(samples).max() <= 0.31


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_audio"),
        (b"%PDF-1.7 this is not audio at all " * 50, 415, "unsupported_audio"),
        (tone_wav(1.0, amplitude=0.0), 400, "empty_audio"),  # digital silence
        (tone_wav(3.0), 413, "audio_too_long"),
    ],
)
def test_refusals(data, status, code):
    with pytest.raises(AudioRefused) as refused:
        audio.decode(data, max_seconds=2)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_streamed_wav_header_is_readable_with_the_pcm_after_it():
    pcm = (np.sin(np.arange(22_050) / 5) * 9000).astype(np.int16).tobytes()
    samples = audio.decode(audio.wav_header(22_050) + pcm, max_seconds=10)
    assert abs(samples.size - 16_000) < 200


def test_ogg_opus_comes_out_as_it_is_fed_and_decodes_back():
    rate = 22_050
    encoder = audio.OggOpusEncoder(rate)
    second = (np.sin(np.arange(rate) / 7) * 8000).astype(np.int16).tobytes()
    first = encoder.feed(second)
    assert first.startswith(b"OggS")
    assert len(first) > 1000  # audio pages, not only the headers, leave with the first piece
    data = first + encoder.feed(second) + encoder.close()
    assert abs(audio.decode(data, max_seconds=10).size - 32_000) < 1000


def test_chunks_cover_the_data():
    data = bytes(range(256)) * 100
    assert b"".join(audio.chunks_of(data, 1000)) == data
