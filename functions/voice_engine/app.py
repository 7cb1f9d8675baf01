"""The voice service's HTTP surface (internal: bearer token, never mounted in the gateway)."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import pydantic
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from functions.voice_engine import audio, models
from functions.voice_engine.audio import AudioRefused
from functions.voice_engine.runtime import Runtime
from functions.voice_engine.text import sentences
from functions.voice_engine.tts import Speaker, SynthesisFailed
from shared.platform.tracing import ContinueTrace


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


class SpeakIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    text: str = pydantic.Field(min_length=1)
    voice: str | None = None
    format: Literal["wav", "ogg"] = "wav"


async def _body(request: Request, cap: int) -> bytes:
    """The request body, refused as soon as it passes `cap` (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise AudioRefused(413, "payload_too_large", f"the upload is over {cap} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > cap:
            raise AudioRefused(413, "payload_too_large", f"the upload is over {cap} bytes")
    return bytes(data)


def create_app(runtime: Runtime) -> Starlette:
    settings, metrics = runtime.settings, runtime.metrics
    token = settings.voice_token.get_secret_value()

    async def transcribe(request: Request) -> Response:
        assert runtime.transcriber is not None
        data = await _body(request, settings.voice_max_upload_bytes)
        language = runtime.transcriber.check_language(request.query_params.get("language"))
        samples = await asyncio.to_thread(audio.decode, data,
                                          max_seconds=settings.voice_max_seconds)  # fmt: skip
        result = await asyncio.to_thread(runtime.transcriber.transcribe, samples, language)
        metrics.audio_in.inc(result.duration_s)
        metrics.stt_rtf.observe(result.compute_s / max(result.duration_s, 1e-3))
        return JSONResponse(result.as_json())

    async def speak(request: Request) -> Response:
        try:
            body = SpeakIn.model_validate(json.loads(await request.body() or b"{}"))
        except (json.JSONDecodeError, pydantic.ValidationError) as exc:
            return error(422, "invalid_request", str(exc))
        if len(body.text) > settings.voice_max_speak_chars:
            return error(413, "text_too_long",
                         f"text is over {settings.voice_max_speak_chars} characters")  # fmt: skip
        voice_id = body.voice or settings.voice_default_voice
        if (speaker := runtime.speakers.get(voice_id)) is None:
            return error(404, "unknown_voice", f"no voice {voice_id!r}")
        pieces = sentences(body.text)
        if not pieces:
            return error(422, "nothing_to_say", "the text has no words to speak")
        media = "audio/wav" if body.format == "wav" else "audio/ogg"
        headers = {"X-Sample-Rate": str(speaker.sample_rate), "X-Voice": voice_id,
                   "Cache-Control": "no-store"}  # fmt: skip
        stream = _spoken(speaker, pieces, body.format, time.perf_counter())
        return StreamingResponse(stream, media_type=media, headers=headers)

    async def _spoken(speaker: Speaker, pieces: list[str], fmt: str,
                      started: float) -> AsyncIterator[bytes]:  # fmt: skip
        encoder = audio.OggOpusEncoder(speaker.sample_rate) if fmt == "ogg" else None
        if encoder is None:
            yield audio.wav_header(speaker.sample_rate)
        # One sentence is synthesised ahead while the previous one is sent.
        ahead: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1)
        producer = asyncio.create_task(_synthesise(speaker, pieces, ahead))
        first = True
        try:
            while (pcm := await ahead.get()) is not None:
                out = encoder.feed(pcm) if encoder else pcm
                if first:
                    metrics.first_audio.observe(time.perf_counter() - started)
                    first = False
                for chunk in audio.chunks_of(out):
                    yield chunk
            if encoder:
                yield encoder.close()
            await producer
            metrics.requests.labels("speak", "ok").inc()
        finally:
            producer.cancel()

    async def _synthesise(speaker: Speaker, pieces: list[str],
                          ahead: asyncio.Queue[bytes | None]) -> None:  # fmt: skip
        for piece in pieces:
            began = time.perf_counter()
            try:
                pcm, rate = await speaker.speak(piece)
            except SynthesisFailed:
                metrics.requests.labels("speak", "sentence_failed").inc()
                continue  # one unspeakable sentence must not silence the rest
            seconds = len(pcm) / 2 / rate
            metrics.audio_out.inc(seconds)
            metrics.tts_rtf.observe((time.perf_counter() - began) / max(seconds, 1e-3))
            await ahead.put(pcm)
        await ahead.put(None)

    async def voices(request: Request) -> Response:
        listed = [{"id": v.id, "language": v.language,
                   "sample_rate": runtime.speakers[v.id].sample_rate}
                  for v in models.VOICES.values() if v.id in runtime.speakers]  # fmt: skip
        return JSONResponse({"voices": listed, "default": settings.voice_default_voice})

    async def healthz(request: Request) -> Response:
        if runtime.ready.is_set():
            assert runtime.transcriber is not None
            ready = {"status": "ok", "stt_model": runtime.transcriber.name,
                     "voices": sorted(runtime.speakers), "start_s": runtime.start_s}  # fmt: skip
            return JSONResponse(ready)
        status = "failed" if runtime.load_error else "starting"
        return JSONResponse({"status": status, "phase": runtime.phase,
                             "error": runtime.load_error}, 503)  # fmt: skip

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def guarded(endpoint: Any, name: str) -> Any:
        async def wrapper(request: Request) -> Response:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return error(401, "unauthorized", "missing or wrong bearer token")
            if not runtime.ready.is_set():
                return error(503, "not_ready", f"the voice service is {runtime.phase}",
                             headers={"Retry-After": "5"})  # fmt: skip
            try:
                response: Response = await endpoint(request)
            except AudioRefused as refused:
                metrics.requests.labels(name, refused.code).inc()
                return error(refused.status, refused.code, str(refused))
            if name != "speak" or response.status_code != 200:  # a stream counts when done
                metrics.requests.labels(name, "ok" if response.status_code < 400 else
                                        "refused").inc()  # fmt: skip
            return response

        return wrapper

    return Starlette(
        routes=[
            Route("/v1/transcribe", guarded(transcribe, "transcribe"), methods=["POST"]),
            Route("/v1/speak", guarded(speak, "speak"), methods=["POST"]),
            Route("/v1/voices", guarded(voices, "voices"), methods=["GET"]),
            Route("/metrics", guarded(metrics_endpoint, "metrics"), methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        # Continues the caller's trace (the voice function's), so synthesis shows in it.
        middleware=[Middleware(ContinueTrace, name="voice")],
    )
