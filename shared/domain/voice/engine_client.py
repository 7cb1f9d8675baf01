"""Client of the voice service (`python -m functions.voice_engine`, its own process: it holds
the Whisper model and the Piper workers, whose GPL code never enters the functions).

Every call carries the service's bearer token, runs under the voice timeouts of settings and
goes through a circuit breaker, so a service that is down fails fast instead of holding each
request for the whole timeout. Calls are safe to repeat (the service keeps no state), so
connection failures and 5xx answers are retried with jitter before a byte of an answer is
read; the service's refusals (empty, not audio, too long, unknown voice) come back as
`VoiceRefused` with its code and status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from shared.domain.voice.errors import refusal
from shared.platform.errors import Unavailable
from shared.platform.resilient_http import ResilientClient
from shared.platform.settings import Settings

SERVICE = "voice service"


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration_s: float
    segments: list[dict[str, Any]]


@dataclass(frozen=True)
class Voice:
    id: str
    language: str
    sample_rate: int


@dataclass(frozen=True)
class VoiceList:
    voices: list[Voice]
    default: str

    def ids(self) -> set[str]:
        return {voice.id for voice in self.voices}


class Speech:
    """Synthesised audio as the service streams it (sentence by sentence); close it when done
    (`async with`), also when the listener went away early."""

    def __init__(self, response: httpx.Response):
        self._response = response
        self.media_type = response.headers.get("content-type", "application/octet-stream")
        self.voice = response.headers.get("x-voice", "")
        rate = response.headers.get("x-sample-rate", "")
        self.sample_rate = int(rate) if rate.isdigit() else None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:  # the service died mid-answer
            raise Unavailable(f"{SERVICE} stopped while speaking: {exc!r}") from exc

    async def read(self, *, max_bytes: int) -> bytes:
        """The whole answer (at most `max_bytes`, a guard against a runaway stream)."""
        data = bytearray()
        async for chunk in self.chunks():
            data += chunk
            if len(data) > max_bytes:
                raise Unavailable(f"{SERVICE} answered more than {max_bytes} bytes of audio")
        return bytes(data)

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aenter__(self) -> Speech:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _error_of(response: httpx.Response) -> tuple[str | None, str]:
    try:
        error = response.json()["error"]
        return str(error.get("code")), str(error.get("message"))[:300]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, response.text[:300]


def _refused(response: httpx.Response) -> Exception:
    """The engine's refusal (its envelope's code and status) as the caller's error."""
    return refusal(response.status_code, *_error_of(response))


class VoiceEngine:
    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None):
        token = settings.voice_token.get_secret_value()
        self._http = ResilientClient(
            service=SERVICE, base_url=settings.voice_service_url,
            headers={"Authorization": f"Bearer {token}"}, timeout_s=settings.voice_timeout_s,
            connect_timeout_s=settings.dependency_timeout_s, transport=transport,
            refusal=_refused,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self._http.aclose()

    async def voices(self) -> VoiceList:
        response = await self._http.send("GET", "/v1/voices")
        data = response.json()
        voices = [Voice(str(v["id"]), str(v.get("language", "")), int(v.get("sample_rate", 0)))
                  for v in data.get("voices", [])]  # fmt: skip
        return VoiceList(voices, str(data.get("default", "")))

    async def transcribe(
        self, audio: bytes, *, content_type: str | None, language: str | None
    ) -> Transcript:
        params = {"language": language} if language else None
        headers = {"Content-Type": content_type or "application/octet-stream"}
        response = await self._http.send("POST", "/v1/transcribe", content=audio, params=params,
                                         headers=headers)  # fmt: skip
        data = response.json()
        return Transcript(
            text=str(data.get("text", "")).strip(), language=str(data.get("language", "")),
            duration_s=float(data.get("duration_s", 0.0)), segments=list(data.get("segments", [])),
        )  # fmt: skip

    async def speak(self, text: str, *, voice: str | None, fmt: str = "wav") -> Speech:
        """The opened audio stream (its status checked, no audio read yet)."""
        body = {"text": text, "voice": voice, "format": fmt}
        return Speech(await self._http.open_stream("POST", "/v1/speak", json=body))
