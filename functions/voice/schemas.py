"""Request and response models of the voice function."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.platform.errors import ValidationError

# A voice id as the voice service names them (`en_US-joe-medium`); which ones exist is the
# service's to say (404 `unknown_voice`).
VOICE_ID = r"^[A-Za-z0-9_.-]{1,64}$"
# ISO 639-1/639-3 language codes, as Whisper takes them ("en", "de", "haw").
LANGUAGE = r"^[a-z]{2,3}$"
# The model's own bound; VOICE_MAX_SPEAK_CHARS (at most this) is checked by the service, so
# the limit is a setting.
SPEAK_HARD_MAX = 100_000


class TranscribeFields(BaseModel):
    """The fields beside the file of POST /v1/voice/transcribe, validated once the streamed
    body has been read (functions.files.multipart keeps them)."""

    model_config = ConfigDict(extra="forbid")
    language: str | None = Field(default=None, pattern=LANGUAGE,
                                 description="the spoken language (default: detected)")  # fmt: skip

    @classmethod
    def of(cls, fields: dict[str, str]) -> TranscribeFields:
        """400 with the details when a field is unknown or invalid."""
        try:
            return cls.model_validate({k: v or None for k, v in fields.items()})
        except pydantic.ValidationError as exc:
            details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                       for e in exc.errors(include_url=False, include_input=False)]  # fmt: skip
            raise ValidationError("the form failed validation", details=details) from exc


class TranscribeForm(TranscribeFields):
    """The multipart/form-data body of POST /v1/voice/transcribe (documentation: the body is
    streamed, never validated whole)."""

    file: bytes = Field(
        description="the recording (webm/opus, ogg, wav, mp3, m4a...), at most"
        " VOICE_MAX_UPLOAD_BYTES and VOICE_MAX_SECONDS",
    )  # fmt: skip


class TranscriptSegment(BaseModel):
    start: float
    end: float
    text: str


class TranscribeOut(BaseModel):
    clip_id: str = Field(description="the kept recording; send it with a mode 'voice' message")
    text: str
    language: str
    duration_s: float
    segments: list[TranscriptSegment]
    mime: str
    audio_uri: str


class SpeakIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=SPEAK_HARD_MAX,
                      description="at most VOICE_MAX_SPEAK_CHARS characters")  # fmt: skip
    voice: str | None = Field(
        default=None, pattern=VOICE_ID,
        description="default: the user's settings default_voice, else VOICE_DEFAULT_VOICE",
    )  # fmt: skip
    format: Literal["wav", "ogg"] = "wav"

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value


class VoiceOut(BaseModel):
    id: str
    language: str
    sample_rate: int


class VoicesOut(BaseModel):
    voices: list[VoiceOut]
    default: str = Field(description="the voice used when neither request nor settings name one")


def segments_of(raw: list[dict[str, Any]]) -> list[TranscriptSegment]:
    return [TranscriptSegment.model_validate(s) for s in raw]
