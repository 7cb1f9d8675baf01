"""The `voice_clips` table: audio a user recorded or had spoken for them. Every query names
the acting user: another user's clip is simply not found (404, never 403)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.voice.audio import description
from shared.platform.errors import Conflict, NotFound


@dataclass(frozen=True)
class Clip:
    id: str
    user_id: str
    object_key: str
    mime: str
    size_bytes: int
    duration_s: float
    language: str | None
    transcript: str | None
    message_id: str | None
    created_at: datetime

    @property
    def uri(self) -> str:
        """Where the owner fetches the audio through the public API."""
        return audio_uri(self.id)


def audio_uri(clip_id: str) -> str:
    return f"/v1/voice/clips/{clip_id}/audio"


def message_segments(clip: Clip, text: str) -> list[dict[str, Any]]:
    """The `content_struct` segments of a voice message: what it says (the transcript as
    the user sent it, maybe edited) and the recording itself."""
    attachment = {"type": "attachment", "kind": "audio", "uri": clip.uri, "mime": clip.mime,
                  "description": description(clip.duration_s)}  # fmt: skip
    return [{"type": "text", "text": text}, attachment]


_COLUMNS = (
    "id::text, user_id::text, object_key, mime, size_bytes, duration_s, language, transcript,"
    " message_id::text, created_at"
)


def clip_id_of(value: str) -> str:
    """A clip id as given (a path parameter, a tool input); not a UUID names no clip (404)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"no such voice clip: {str(value)[:64]!r}") from None


async def insert(
    conn: Any, *, clip_id: str, user_id: str, object_key: str, mime: str, size_bytes: int,
    duration_s: float, language: str | None, transcript: str | None,
    kind: str = "recording",
) -> Clip:  # fmt: skip
    values = (clip_id, user_id, object_key, mime, size_bytes, duration_s, language, transcript,
              kind)  # fmt: skip
    row = await (
        await conn.execute(
            "INSERT INTO voice_clips (id, user_id, object_key, mime, size_bytes, duration_s,"  # noqa: S608 - constant columns, values bound
            " language, transcript, kind) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" RETURNING {_COLUMNS}",
            values,
        )
    ).fetchone()
    assert row is not None
    return Clip(*row)


async def get(conn: Any, user_id: str, clip_id: str, *, lock: bool = False) -> Clip:
    row = await (
        await conn.execute(
            f"SELECT {_COLUMNS} FROM voice_clips WHERE id = %s AND user_id = %s"  # noqa: S608 - constant columns, values bound
            + (" FOR UPDATE" if lock else ""),
            (clip_id_of(clip_id), user_id),
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such voice clip")
    return Clip(*row)


async def link_message(conn: Any, user_id: str, clip_id: str, message_id: str) -> None:
    """The clip became this user message (in the caller's transaction). A clip sent again
    (an edited voice message) points at its newest message."""
    cursor = await conn.execute(
        "UPDATE voice_clips SET message_id = %s WHERE id = %s AND user_id = %s RETURNING id",
        (message_id, clip_id_of(clip_id), user_id),
    )
    if await cursor.fetchone() is None:
        raise NotFound("no such voice clip")


async def count_for(conn: Any, user_id: str) -> int:
    row = await (
        await conn.execute("SELECT count(*) FROM voice_clips WHERE user_id = %s", (user_id,))
    ).fetchone()
    return int(row[0]) if row else 0


async def delete_unsent(conn: Any, user_id: str, clip_id: str) -> str:
    """Deletes the user's recording that is no message (yet); its object key. A clip that is
    part of a message goes with the message, never on its own (409)."""
    clip = await get(conn, user_id, clip_id, lock=True)
    if clip.message_id is not None:
        raise Conflict("the recording belongs to a message", details={"reason": "sent"})
    await conn.execute("DELETE FROM voice_clips WHERE id = %s", (clip.id,))
    return clip.object_key


async def delete_expired(conn: Any, *, older_than_s: float, limit: int) -> list[str]:
    """Deletes up to `limit` recordings that are no message and are older than `older_than_s`
    (never sent, or their message deleted); their object keys."""
    rows = await (
        await conn.execute(
            "DELETE FROM voice_clips WHERE id IN (SELECT id FROM voice_clips"
            " WHERE message_id IS NULL AND kind = 'recording'"
            " AND created_at < now() - make_interval(secs => %s)"
            " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING object_key",
            (older_than_s, limit),
        )
    ).fetchall()
    return [row[0] for row in rows]
