"""Voice function (issue 22): recordings transcribed and kept as the user's clips, speech
streamed sentence by sentence, the voices there are, and a clip's audio for its owner. The
models run in the voice service (`python -m functions.voice_engine`, its own process); this
function checks, stores and relays (`shared.domain.voice`).

A recording is refused before anything is stored: by its declared size, then as its bytes
stream in past the cap, then by the voice service (empty, not audio, too long). Only an
accepted recording is written, the object first and the row after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from functions.files.multipart import FORM_OVERHEAD_BYTES, FormReader
from functions.voice.schemas import (
    SpeakIn,
    TranscribeFields,
    TranscribeForm,
    TranscribeOut,
    VoiceOut,
    VoicesOut,
    segments_of,
)
from shared.domain.accounts import user_settings
from shared.domain.voice.engine_client import Speech
from shared.domain.voice.service import read_capped
from shared.platform.auth.perimeter import perimeter
from shared.platform.errors import PayloadTooLarge
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


def _form(request: Request, cap: int) -> FormReader:
    """The upload's body as it streams in; refused (413) by its declared size before a byte
    of it is read."""
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isascii() and length.isdigit() else None
    if (declared or 0) > cap + FORM_OVERHEAD_BYTES:
        raise PayloadTooLarge(f"the recording is over {cap} bytes", details={"max_bytes": cap})
    return FormReader(request.headers.get("content-type", ""), request.stream(),
                      declared_bytes=declared)  # fmt: skip


async def transcribe(call: Call[Any], *, services: Services) -> TranscribeOut:
    cap = services.settings.voice_max_upload_bytes
    form = _form(call.request, cap)
    part = await form.file_part()
    data = await read_capped(form.file_bytes(), cap)
    fields = TranscribeFields.of(form.fields)  # complete once the body is read
    done = await services.voice.transcribe(
        call.user.user_id, data, declared_type=part.content_type, language=fields.language
    )
    clip, transcript = done.clip, done.transcript
    return TranscribeOut(
        clip_id=clip.id, text=transcript.text, language=transcript.language,
        duration_s=transcript.duration_s, segments=segments_of(transcript.segments),
        mime=clip.mime, audio_uri=clip.uri,
    )  # fmt: skip


async def _relay(speech: Speech) -> AsyncIterator[bytes]:
    """The service's audio as it comes; the service's stream closes with ours (a listener
    who leaves stops the synthesis)."""
    async with speech:
        async for chunk in speech.chunks():
            yield chunk


async def speak(call: Call[SpeakIn], *, services: Services) -> StreamingResponse:
    body = call.body
    voice = body.voice
    if voice is None:
        async with services.db.connection() as conn:
            voice = (await user_settings.get(conn, call.user.user_id)).default_voice
    # Opened here, so a refusal (unknown voice, text too long) is an error answer, not a
    # broken stream.
    speech = await services.voice.speak(body.text, voice=voice, fmt=body.format)
    headers = {"Cache-Control": "no-store", "X-Voice": speech.voice}
    if speech.sample_rate:
        headers["X-Sample-Rate"] = str(speech.sample_rate)
    return StreamingResponse(_relay(speech), media_type=speech.media_type, headers=headers)


async def voices(call: Call[Any], *, services: Services) -> VoicesOut:
    listed = await services.voice.engine.voices()
    return VoicesOut(voices=[VoiceOut(id=v.id, language=v.language, sample_rate=v.sample_rate)
                             for v in listed.voices], default=listed.default)  # fmt: skip


async def discard_clip(call: Call[Any], *, services: Services) -> dict[str, bool]:
    await services.voice.discard(call.user.user_id, call.uuid_param("id"))
    return {"deleted": True}


async def sweep(call: Call[Any], *, services: Services) -> dict[str, int]:
    older_than_s = services.settings.voice_unsent_clip_ttl_s
    return {"deleted": await services.voice.sweep(older_than_s=older_than_s)}


async def clip_audio(call: Call[Any], *, services: Services) -> StreamingResponse:
    clip, chunks = await services.voice.audio_of(call.user.user_id, call.uuid_param("id"))
    headers = {"Content-Length": str(clip.size_bytes), "Cache-Control": "private, max-age=3600",
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    return StreamingResponse(chunks, media_type=clip.mime, headers=headers)


ROUTES = RouteTable(
    "voice",
    [
        Route("POST", "/v1/voice/transcribe", transcribe,
              "Transcribe a recording (multipart field 'file'; optional language) and keep it"
              " as a clip for a voice message", access=Access.USER, form_model=TranscribeForm,
              response_model=TranscribeOut, status=201, rate_limit="voice"),
        Route("POST", "/v1/voice/speak", speak,
              "Speak a text: audio/wav or audio/ogg, streamed sentence by sentence",
              access=Access.USER, request_model=SpeakIn, streaming=True, answer="audio",
              rate_limit="voice"),
        Route("GET", "/v1/voice/voices", voices, "The voices answers can be spoken in",
              access=Access.USER, response_model=VoicesOut),
        Route("GET", "/v1/voice/clips/{id}/audio", clip_audio,
              "A clip's audio (its owner only)", access=Access.USER, streaming=True,
              answer="audio"),
        Route("DELETE", "/v1/voice/clips/{id}", discard_clip,
              "Discard a recording that was not sent (one in a message: 409)",
              access=Access.USER),
        Route("POST", "/events", sweep,
              "Scheduled: recordings never sent (or whose message is gone) past"
              " VOICE_UNSENT_CLIP_TTL_S are deleted", access=Access.INTERNAL),
    ],
    **perimeter(),
)  # fmt: skip
