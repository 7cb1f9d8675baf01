"""The voice service with its real models: speech made by Piper is heard back by Whisper, in
both containers; what it refuses, it refuses before any model runs; it needs its token."""

from __future__ import annotations

import io
import wave

import httpx
import pytest

from bench.wer import wer
from tests.voice import AUTH, speak

# Twenty words or more each, so one misheard word stays under the bound (Piper samples its
# noise, so the audio, and now and then a word, differs from run to run).
SENTENCES = [
    "The quick brown fox jumps over the lazy dog, and then it runs back into the forest to"
    " find its family.",
    "Please send the quarterly report to the finance team before Friday afternoon, so that we"
    " can review it together next week.",
    "Our train leaves the station early in the morning, so we should pack our bags tonight and"
    " go to bed early.",
]


def transcribe(url: str, data: bytes, **params: str) -> httpx.Response:
    return httpx.post(url + "/v1/transcribe", content=data, params=params, headers=AUTH,
                      timeout=120)  # fmt: skip


@pytest.mark.parametrize("text", SENTENCES)
def test_speech_round_trip_under_a_tenth_word_error(voice_service, text):
    heard = transcribe(voice_service, speak(voice_service, text))
    assert heard.status_code == 200, heard.text
    body = heard.json()
    assert wer(text, body["text"]) < 0.1, body["text"]
    assert body["language"] == "en"
    assert body["duration_s"] > 1
    assert body["segments"] and body["segments"][-1]["end"] <= body["duration_s"] + 0.5


def test_wav_stream_is_a_playable_wav_at_the_voices_rate(voice_service):
    response = httpx.post(voice_service + "/v1/speak", json={"text": "One. Two. Three."},
                          headers=AUTH, timeout=60)  # fmt: skip
    assert response.headers["content-type"] == "audio/wav"
    rate = int(response.headers["x-sample-rate"])
    data = response.content
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pcm = data[44:]
    # Three sentences, each synthesised on its own: well over a second of speech.
    assert len(pcm) / 2 / rate > 1.0
    fixed = io.BytesIO()
    with wave.open(fixed, "wb") as w:  # the same PCM with real sizes parses as a WAV
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    assert transcribe(voice_service, fixed.getvalue()).status_code == 200


def test_ogg_opus_round_trip(voice_service):
    text = "Ogg files carry opus audio for the web."
    data = speak(voice_service, text, fmt="ogg")
    assert data[:4] == b"OggS"
    body = transcribe(voice_service, data, language="en").json()
    assert wer(text, body["text"]) < 0.2, body["text"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_audio"),
        (b"Just some text, not a recording. " * 40, 415, "unsupported_audio"),
    ],
)
def test_bad_audio_is_refused_in_the_envelope(voice_service, data, status, code):
    response = transcribe(voice_service, data)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_unknown_language_and_voice_and_empty_text(voice_service):
    audio = speak(voice_service, "Hello.")
    assert transcribe(voice_service, audio, language="xx").status_code == 422
    for body, status in [({"text": "Hi.", "voice": "nobody"}, 404), ({"text": "..."}, 422),
                         ({"text": ""}, 422), ({"text": "hi", "format": "mp9"}, 422)]:  # fmt: skip
        response = httpx.post(voice_service + "/v1/speak", json=body, headers=AUTH, timeout=30)
        assert response.status_code == status, body
        assert "error" in response.json()


def test_the_token_is_required(voice_service):
    assert httpx.get(voice_service + "/v1/voices").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    refused = httpx.post(voice_service + "/v1/speak", json={"text": "x"}, headers=wrong)
    assert refused.status_code == 401
    voices = httpx.get(voice_service + "/v1/voices", headers=AUTH).json()
    assert voices["default"] == "en_US-joe-medium"
    assert voices["voices"][0]["sample_rate"] == 22_050


def test_metrics_count_audio_both_ways(voice_service):
    transcribe(voice_service, speak(voice_service, "Counting seconds of audio."))
    text = httpx.get(voice_service + "/metrics", headers=AUTH).text
    names = [
        "voice_audio_in_seconds_total",
        "voice_audio_out_seconds_total",
        "voice_stt_real_time_factor_bucket",
        "voice_tts_first_audio_seconds_bucket",
    ]
    for name in names:
        assert name in text
    assert 'voice_requests_total{outcome="ok",route="transcribe"}' in text
