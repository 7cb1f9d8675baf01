"""Recordings that are never sent do not stay: the web app discards one the user cancels, and
the voice function's hourly sweep removes those left behind (a closed tab, a deleted message)
past VOICE_UNSENT_CLIP_TTL_S, while a sent recording and a workflow's speech stay."""

from __future__ import annotations

import httpx
import pytest

from infra.gateway.app import internal_app
from shared.domain.chat import conversations
from shared.domain.voice import clips
from tests.integration.chatkit import user
from tests.integration.voicekit import clip_row, stored, voice_api, voice_services

pytestmark = pytest.mark.integration
__all__ = ["voice_api", "voice_services"]  # the fixtures, shared with test_voice_api


async def _send(services, user_id: str, clip_id: str) -> str:
    """The clip made a user message (as a voice chat turn links it); the message's id."""
    async with services.db.connection() as conn, conn.transaction():
        made = await conversations.create(conn, user_id, title="voice")
        message = await conversations.append_message(
            conn, user_id, made.id, sender="user", content="probe", parent_id=None, meta={}
        )
        await clips.link_message(conn, user_id, clip_id, message.id)
    return made.id


async def _backdate(services, clip_id: str, hours: float, kind: str | None = None) -> None:
    async with services.db.connection() as conn:
        await conn.execute(
            "UPDATE voice_clips SET created_at = now() - make_interval(hours => %s),"
            " kind = coalesce(%s, kind) WHERE id = %s",
            (hours, kind, clip_id),
        )


async def test_an_unsent_recording_is_discarded_by_its_owner_only(voice_api, voice_services):
    owner_id, owner = await user(voice_api)
    _, other = await user(voice_api)
    clip_id = await clip_row(owner_id)
    assert (await voice_api.delete(f"/v1/voice/clips/{clip_id}", headers=other)).status_code == 404
    assert (await stored(voice_services, owner_id))[1] == 1
    gone = await voice_api.delete(f"/v1/voice/clips/{clip_id}", headers=owner)
    assert gone.status_code == 200 and gone.json()["data"] == {"deleted": True}
    assert await stored(voice_services, owner_id) == ([], 0)  # the row and the object
    assert (await voice_api.delete(f"/v1/voice/clips/{clip_id}", headers=owner)).status_code == 404


async def test_a_sent_recording_is_not_discarded_on_its_own(voice_api, voice_services):
    owner_id, owner = await user(voice_api)
    clip_id = await clip_row(owner_id)
    await _send(voice_services, owner_id, clip_id)
    refused = await voice_api.delete(f"/v1/voice/clips/{clip_id}", headers=owner)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["details"] == {"reason": "sent"}
    assert (
        await voice_api.get(f"/v1/voice/clips/{clip_id}/audio", headers=owner)
    ).status_code == 200


async def test_the_sweep_removes_old_unsent_recordings_only(voice_api, voice_services):
    owner_id, _ = await user(voice_api)
    old_unsent, fresh_unsent, old_sent, old_speech, orphaned = [
        await clip_row(owner_id) for _ in range(5)
    ]
    await _send(voice_services, owner_id, old_sent)
    conversation = await _send(voice_services, owner_id, orphaned)
    async with voice_services.db.connection() as conn:  # its message goes with its conversation
        await conn.execute("DELETE FROM conversation WHERE id = %s", (conversation,))
    for clip_id in (old_unsent, old_sent, orphaned):
        await _backdate(voice_services, clip_id, hours=30)
    await _backdate(voice_services, old_speech, hours=30, kind="speech")
    # As the schedule fires it (the dispatcher POSTs the EventBridge event to the function).
    app = internal_app(voice_services.settings, services=voice_services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        swept = await client.post("/functions/VoiceFunction/events", json={"source": "aws.events"})
    assert swept.status_code == 200, swept.text
    assert swept.json()["data"]["deleted"] >= 2
    keys, rows = await stored(voice_services, owner_id)
    assert rows == 3
    assert sorted(keys) == sorted(
        f"users/{owner_id}/voice/{c}.wav" for c in (fresh_unsent, old_sent, old_speech)
    )
