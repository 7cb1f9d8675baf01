"""The test voice service (`python -m functions.voice_engine`: Whisper and Piper, the real
models): how tests start one. The session's shared one is the `voice_service` fixture
(tests/conftest.py)."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np

from tests.helpers import free_port, project_process, wait_for

TOKEN = "test-voice-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start_voice(tmp_path_factory, name: str = "voice", **extra: str):
    port = free_port()
    env = {"VOICE_PORT": str(port), "VOICE_TOKEN": TOKEN, "LOG_LEVEL": "INFO", **extra}
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp(name) / "voice.log"
    return url, project_process(
        ["-m", "functions.voice_engine"], env=env, ready_url=url + "/healthz", log_path=log
    )


def wait_voice_ready(url: str) -> None:
    def ready() -> bool:
        try:
            response = httpx.get(url + "/healthz", timeout=5)
        except httpx.TransportError:
            return False
        if response.status_code == 503 and response.json().get("status") == "failed":
            raise AssertionError(f"the voice service failed to start: {response.json()}")
        return response.status_code == 200

    wait_for(ready, timeout_s=180, interval_s=0.5, what="voice service ready")


def speak(url: str, text: str, fmt: str = "wav") -> bytes:
    """Audio of `text`, synthesised by the service (how tests make speech: no binary files)."""
    response = httpx.post(url + "/v1/speak", json={"text": text, "format": fmt}, headers=AUTH,
                          timeout=120)  # fmt: skip
    response.raise_for_status()
    return response.content


def wav_of(pcm: bytes, rate: int) -> bytes:
    """A WAV file of 16-bit mono `pcm` at `rate`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def silence_wav(seconds: float, rate: int = 8000) -> bytes:
    return wav_of(b"\x00\x00" * int(seconds * rate), rate)


def tone_wav(seconds: float, rate: int = 16_000, amplitude: float = 0.3) -> bytes:
    """A 440 Hz tone: audio that is neither silent nor speech."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return wav_of(samples.tobytes(), rate)
