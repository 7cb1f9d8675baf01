"""The voice tools a workflow node may call (issue 22), bound by name to their seeded
`tool.spec` artifacts (sql/seed/002_voice_tools.sql): `voice.transcribe_v1` reads one of the
caller's clips back as text, `voice.speak_v1` speaks a text and keeps it as the caller's clip.
Both go through the voice service the context's `extras["voice"]` holds
(`shared.domain.voice.service.VoiceService`); a clip of another user is not found."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain.tools.base import ToolContext
from shared.domain.voice.service import VoiceService
from shared.platform.errors import Unavailable


def _voice(ctx: ToolContext) -> VoiceService:
    voice = ctx.extras.get("voice")
    if not isinstance(voice, VoiceService):
        raise Unavailable("the voice service is not configured in this process")
    return voice


async def transcribe(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """The words of one of the caller's clips (transcribed again, in `language` if given)."""
    voice = _voice(ctx)
    clip = await voice.clip(ctx.user_id, str(inputs["clip_id"]))
    data = await voice.read(clip)
    language = inputs.get("language")
    done = await voice.engine.transcribe(data, content_type=clip.mime,
                                         language=str(language) if language else None)  # fmt: skip
    return {"text": done.text, "language": done.language, "duration_s": done.duration_s,
            "clip_id": clip.id}  # fmt: skip


async def speak(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """`text` spoken (in `voice`, else the service's default) and kept as the caller's clip."""
    voice_id = inputs.get("voice")
    clip = await _voice(ctx).speak_to_clip(
        ctx.user_id, str(inputs["text"]), voice=str(voice_id) if voice_id else None
    )
    return {"clip_id": clip.id, "uri": clip.uri, "mime": clip.mime,
            "duration_s": clip.duration_s}  # fmt: skip
