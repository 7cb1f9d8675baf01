"""Voice for users: recordings transcribed and kept as clips, speech streamed or kept.

Transport-neutral: a recording is its bytes (the voice function reads them out of a multipart
body, within the size cap). Nothing is stored until the voice service has accepted the audio:
the object goes to the store after the transcript came back, the row after the object, and
the object is removed when the row cannot be written, so a refused or failed upload leaves
neither. Clips live under `users/{user_id}/voice/{clip_id}.{ext}`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from shared.domain.voice import audio, clips
from shared.domain.voice.clips import Clip
from shared.domain.voice.engine_client import Speech, Transcript, VoiceEngine
from shared.domain.voice.errors import EmptyAudio
from shared.platform.db.pool import Pool
from shared.platform.errors import PayloadTooLarge, ValidationError

log = logging.getLogger(__name__)
READ_BYTES = 256 << 10
_AUDIO_TYPE = re.compile(r"audio/[a-z0-9.+-]{1,60}")


def object_key(user_id: str, clip_id: str, ext: str) -> str:
    return f"users/{user_id}/voice/{clip_id}.{ext}"


async def read_capped(chunks: AsyncIterable[bytes], cap: int) -> bytes:
    """All of a recording's bytes, refused (413) as soon as they pass `cap`: a recording is
    sent whole to the voice service, so it is held whole, and never more than the cap."""
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > cap:
            raise PayloadTooLarge(f"the recording is over {cap} bytes",
                                  details={"max_bytes": cap})  # fmt: skip
    return bytes(data)


def stored_type(data: bytes, declared: str | None) -> tuple[str, str]:
    """(media type, extension) a recording is kept and served with: its container as its
    bytes say; the client's declared `audio/*` type only when the bytes name none we know."""
    media, ext = audio.sniff(data)
    declared = (declared or "").split(";")[0].strip().lower()
    if (media, ext) == audio.UNKNOWN and _AUDIO_TYPE.fullmatch(declared):
        return declared, "bin"
    return media, ext


@dataclass(frozen=True)
class Transcribed:
    clip: Clip
    transcript: Transcript


@dataclass
class VoiceService:
    pool: Pool
    s3: Any
    bucket: str
    engine: VoiceEngine
    max_upload_bytes: int
    max_speak_chars: int
    default_voice: str

    async def transcribe(
        self, user_id: str, data: bytes, *, declared_type: str | None, language: str | None
    ) -> Transcribed:
        """The recording transcribed, then kept as the user's clip (with its transcript)."""
        if not data:
            raise EmptyAudio()
        if len(data) > self.max_upload_bytes:
            raise PayloadTooLarge(f"the recording is over {self.max_upload_bytes} bytes")
        mime, ext = stored_type(data, declared_type)
        transcript = await self.engine.transcribe(data, content_type=mime, language=language)
        clip = await self.keep(
            user_id, data, mime=mime, ext=ext, duration_s=transcript.duration_s,
            language=transcript.language or language, transcript=transcript.text,
        )  # fmt: skip
        return Transcribed(clip, transcript)

    async def keep(
        self, user_id: str, data: bytes, *, mime: str, ext: str, duration_s: float,
        language: str | None, transcript: str | None, kind: str = "recording",
    ) -> Clip:  # fmt: skip
        """Stores the bytes, then the row; the object is removed if the row is not written."""
        clip_id = str(uuid.uuid4())
        key = object_key(user_id, clip_id, ext)
        await asyncio.to_thread(self.s3.put_object, Bucket=self.bucket, Key=key, Body=data,
                                ContentType=mime)  # fmt: skip
        try:
            async with self.pool.connection() as conn, conn.transaction():
                return await clips.insert(
                    conn, clip_id=clip_id, user_id=user_id, object_key=key, mime=mime,
                    size_bytes=len(data), duration_s=duration_s, language=language,
                    transcript=transcript, kind=kind,
                )  # fmt: skip
        except BaseException:
            # Shielded: a cancelled request must still not leave an object without its row.
            await asyncio.shield(self._remove(key))
            raise

    async def _remove(self, key: str) -> None:
        await asyncio.to_thread(self.s3.delete_object, Bucket=self.bucket, Key=key)

    async def clip(self, user_id: str, clip_id: str) -> Clip:
        async with self.pool.connection() as conn:
            return await clips.get(conn, user_id, clip_id)

    async def audio_of(self, user_id: str, clip_id: str) -> tuple[Clip, AsyncIterator[bytes]]:
        """The owner's clip and its bytes as they come from the store (404 for anyone else)."""
        clip = await self.clip(user_id, clip_id)
        answer = await asyncio.to_thread(self.s3.get_object, Bucket=self.bucket,
                                         Key=clip.object_key)  # fmt: skip
        return clip, _body_chunks(answer["Body"])

    async def read(self, clip: Clip) -> bytes:
        answer = await asyncio.to_thread(self.s3.get_object, Bucket=self.bucket,
                                         Key=clip.object_key)  # fmt: skip
        return await asyncio.to_thread(answer["Body"].read)

    def check_text(self, text: str) -> None:
        if len(text) > self.max_speak_chars:
            raise ValidationError(
                f"text is over {self.max_speak_chars} characters",
                details=[{"loc": ["text"], "msg": f"at most {self.max_speak_chars} characters",
                          "type": "string_too_long"}],
            )  # fmt: skip

    async def speak(self, text: str, *, voice: str | None, fmt: str = "wav") -> Speech:
        """The opened speech stream (the caller closes it), in `voice` or the default."""
        self.check_text(text)
        return await self.engine.speak(text, voice=voice or self.default_voice, fmt=fmt)

    async def speak_to_clip(self, user_id: str, text: str, *, voice: str | None) -> Clip:
        """`text` spoken and kept as the user's clip (a WAV with its real sizes)."""
        # 16-bit mono at 48 kHz for the longest text at a slow 5 characters a second: more
        # than any voice produces.
        cap = 2 * 48_000 * (self.max_speak_chars // 5 + 60)
        async with await self.speak(text, voice=voice) as speech:
            data = audio.finished_wav(await speech.read(max_bytes=cap))
        return await self.keep(user_id, data, mime="audio/wav", ext="wav",
                               duration_s=round(audio.wav_duration_s(data), 3), language=None,
                               transcript=text, kind="speech")  # fmt: skip

    async def discard(self, user_id: str, clip_id: str) -> None:
        """The user's unsent recording, row then object (a row never points at nothing)."""
        async with self.pool.connection() as conn, conn.transaction():
            key = await clips.delete_unsent(conn, user_id, clip_id)
        await self._remove(key)

    async def sweep(self, *, older_than_s: float, limit: int = 500) -> int:
        """Recordings that never became a message (or lost it) past their time: rows first,
        then objects; an object that cannot be removed now is only a stray file."""
        async with self.pool.connection() as conn, conn.transaction():
            keys = await clips.delete_expired(conn, older_than_s=older_than_s, limit=limit)
        for key in keys:
            try:
                await self._remove(key)
            except Exception:  # one stuck object must not stop the sweep
                log.warning("voice sweep: could not remove an object", extra={"key": key})
        return len(keys)


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(body.read, READ_BYTES):
            yield chunk
    finally:
        body.close()
