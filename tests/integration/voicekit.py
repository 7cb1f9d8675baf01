"""Helpers for the voice tests: the in-process gateway pointed at the session's voice service
(Whisper and Piper, the real models) and inference service, speech made through the public
speak route (no binary files in the repository), what a user has stored, and word error
rate."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from shared.domain.voice import clips
from shared.domain.voice.service import object_key
from shared.platform.aws import s3_client
from shared.platform.settings import get_settings
from shared.platform.template import load_template
from shared.services import Services
from tests.integration.conftest import gateway_client
from tests.voice import TOKEN as VOICE_TOKEN
from tests.voice import silence_wav


def services_with(settings, voice_url: str, inference_url: str | None = None) -> Services:
    from tests.inference import TOKEN

    update = {"voice_url": voice_url, "voice_token": SecretStr(VOICE_TOKEN)}
    if inference_url:  # answers kept short
        update |= {"inference_url": inference_url, "inference_token": SecretStr(TOKEN),
                   "chat_max_tokens": 48}  # fmt: skip
    return Services.from_settings(settings.model_copy(update=update))


@pytest.fixture(scope="session")
async def voice_services(migrated, settings, voice_service):
    """Services whose voice service is this session's."""
    made = services_with(settings, voice_service)
    yield made
    await made.aclose()


@pytest.fixture(scope="session")
async def voice_chat_services(migrated, settings, voice_service, service):
    """Services whose voice service and LLM backend are this session's."""
    made = services_with(settings, voice_service, service)
    yield made
    await made.aclose()


@pytest.fixture
async def voice_api(settings, voice_services):
    async with gateway_client(settings, voice_services) as client:
        yield client


@pytest.fixture
async def voice_chat_api(settings, voice_chat_services):
    async with gateway_client(settings, voice_chat_services) as client:
        yield client


async def spoken(client: httpx.AsyncClient, headers: dict[str, str], text: str,
                 fmt: str = "wav") -> bytes:  # fmt: skip
    response = await client.post("/v1/voice/speak", headers=headers,
                                 json={"text": text, "format": fmt})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.content


async def transcribed(
    client: httpx.AsyncClient, headers: dict[str, str], audio: bytes, *,
    name: str = "clip.wav", mime: str = "audio/wav",
) -> httpx.Response:  # fmt: skip
    return await client.post("/v1/voice/transcribe", headers=headers,
                             files={"file": (name, audio, mime)})  # fmt: skip


async def stored(services: Services, user_id: str) -> tuple[list[str], int]:
    """(object keys under the user's voice prefix, voice_clips rows of the user)."""
    listed = services.s3.list_objects_v2(Bucket=services.bucket(),
                                         Prefix=f"users/{user_id}/voice/")  # fmt: skip
    keys = [item["Key"] for item in listed.get("Contents", [])]
    async with services.db.connection() as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM voice_clips WHERE user_id = %s", (user_id,))
        ).fetchone()
    return keys, int(row[0]) if row else 0


async def clip_row(user_id: str, audio: bytes | None = None) -> str:
    """A clip as the transcribe route leaves one (its object and its row), made without the
    voice service; its id. For tests of the routes that only read a clip."""
    settings = get_settings()
    audio = audio or silence_wav(0.5)
    clip_id = str(uuid.uuid4())
    key = object_key(user_id, clip_id, "wav")
    bucket = load_template(settings.template_path, settings).buckets["DataBucket"].name
    s3_client(settings).put_object(Bucket=bucket, Key=key, Body=audio, ContentType="audio/wav")
    async with await psycopg.AsyncConnection.connect(settings.postgres_dsn,
                                                     autocommit=True) as conn:  # fmt: skip
        await clips.insert(conn, clip_id=clip_id, user_id=user_id, object_key=key,
                           mime="audio/wav", size_bytes=len(audio), duration_s=0.5,
                           language="en", transcript="probe")  # fmt: skip
    return clip_id
