"""Conversations and messages in Postgres. Every function takes the acting user and filters on
it: another user's conversation is simply not found (404, never 403)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.domain.chat.content import normalize
from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound, ValidationError


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    active_context_id: str | None
    message_count: int


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    parent_id: str | None
    sender: str
    role: str
    content: str
    content_struct: dict[str, Any] | None
    seq: int
    created_at: datetime
    token_count_in: int | None
    token_count_out: int | None
    meta: dict[str, Any]


_CONVERSATION = (
    "SELECT c.id::text, c.title, c.status, c.created_at, c.updated_at,"
    " c.active_context_id::text,"
    " (SELECT count(*) FROM message m WHERE m.conversation_id = c.id)::int"
    " FROM conversation c"
)
_MESSAGE = (
    "SELECT m.id::text, m.conversation_id::text, m.parent_id::text, m.sender, m.role, m.content,"
    " m.content_struct, m.seq, m.created_at, m.token_count_in, m.token_count_out, m.meta"
    " FROM message m JOIN conversation c ON c.id = m.conversation_id"
)


async def create(conn: psycopg.AsyncConnection, user_id: str, *, title: str | None) -> Conversation:
    row = await (
        await conn.execute(
            "INSERT INTO conversation (user_id, title) VALUES (%s, %s) RETURNING id::text",
            (user_id, title),
        )
    ).fetchone()
    assert row is not None
    return await _get(conn, user_id, row[0])


async def list_for(
    conn: Connection, user_id: str, *, cursor: str | None, limit: int, status: str | None
) -> tuple[list[Conversation], str | None]:
    """Most recently updated first (the sidebar), keyset-paginated on (updated_at, id)."""
    where, params = ["c.user_id = %s"], [user_id]
    if status:
        where.append("c.status = %s")
        params.append(status)
    if cursor:
        updated, last_id = decode_cursor(cursor, 2)
        where.append("(c.updated_at, c.id) < (%s::timestamptz, %s::uuid)")
        params += [updated, last_id]
    rows = await (
        await conn.execute(
            f"{_CONVERSATION} WHERE {' AND '.join(where)}"
            " ORDER BY c.updated_at DESC, c.id DESC LIMIT %s",
            (*params, probe_size(limit)),
        )
    ).fetchall()
    return keyset_page([Conversation(*row) for row in rows], limit,
                       lambda c: encode_cursor(c.updated_at, c.id))  # fmt: skip


async def get(conn: psycopg.AsyncConnection, user_id: str, conversation_id: str) -> Conversation:
    return await _get(conn, user_id, conversation_id)


async def update(
    conn: Connection,
    user_id: str,
    conversation_id: str,
    *,
    title: str | None = None,
    status: str | None = None,
) -> Conversation:
    cursor = await conn.execute(
        "UPDATE conversation SET title = coalesce(%s, title), status = coalesce(%s, status),"
        " updated_at = now() WHERE id = %s AND user_id = %s RETURNING id",
        (title, status, conversation_id, user_id),
    )
    if await cursor.fetchone() is None:
        raise NotFound("no such conversation")
    return await _get(conn, user_id, conversation_id)


async def delete(conn: Connection, user_id: str, conversation_id: str) -> None:
    """The conversation and its messages (cascade)."""
    cursor = await conn.execute(
        "DELETE FROM conversation WHERE id = %s AND user_id = %s RETURNING id",
        (conversation_id, user_id),
    )
    if await cursor.fetchone() is None:
        raise NotFound("no such conversation")


async def append_message(
    conn: psycopg.AsyncConnection,
    user_id: str,
    conversation_id: str,
    *,
    sender: str,
    content: str,
    content_struct: Any = None,
    parent_id: str | None = None,
    role: str | None = None,
    token_count_in: int | None = None,
    token_count_out: int | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    """Adds a message at the conversation's next `seq` (the conversation row is locked, so
    concurrent writers get distinct numbers) and moves the conversation to the top."""
    async with conn.transaction():
        owned = await (
            await conn.execute(
                "SELECT 1 FROM conversation WHERE id = %s AND user_id = %s FOR UPDATE",
                (conversation_id, user_id),
            )
        ).fetchone()
        if owned is None:
            raise NotFound("no such conversation")
        if parent_id is not None:
            parent = await (
                await conn.execute(
                    "SELECT 1 FROM message WHERE id = %s AND conversation_id = %s",
                    (parent_id, conversation_id),
                )
            ).fetchone()
            if parent is None:
                raise ValidationError("parent_id is not a message of this conversation")
        row = await (
            await conn.execute(
                "INSERT INTO message (conversation_id, parent_id, sender, role, content,"
                " content_struct, seq, token_count_in, token_count_out, meta)"
                " SELECT %s, %s, %s, %s, %s, %s, coalesce(max(seq), 0) + 1, %s, %s, %s"
                " FROM message WHERE conversation_id = %s RETURNING id::text",
                (
                    conversation_id,
                    parent_id,
                    sender,
                    role or sender,
                    content,
                    Jsonb(struct) if (struct := normalize(content_struct)) else None,
                    token_count_in,
                    token_count_out,
                    Jsonb(meta or {}),
                    conversation_id,
                ),
            )
        ).fetchone()
        assert row is not None
        await conn.execute(
            "UPDATE conversation SET updated_at = now() WHERE id = %s", (conversation_id,)
        )
        message = await (await conn.execute(_MESSAGE + " WHERE m.id = %s", (row[0],))).fetchone()
    assert message is not None
    return Message(*message)


async def messages(
    conn: Connection,
    user_id: str,
    conversation_id: str,
    *,
    after_seq: int,
    limit: int,
) -> tuple[list[Message], int | None]:
    """In `seq` order from `after_seq`; the next cursor is the last seq returned."""
    await _get(conn, user_id, conversation_id)  # 404 for anyone else's conversation
    rows = await (
        await conn.execute(
            _MESSAGE + " WHERE m.conversation_id = %s AND c.user_id = %s AND m.seq > %s"
            " ORDER BY m.seq LIMIT %s",
            (conversation_id, user_id, after_seq, probe_size(limit)),
        )
    ).fetchall()
    return keyset_page([Message(*row) for row in rows], limit, lambda m: m.seq)


async def _get(conn: psycopg.AsyncConnection, user_id: str, conversation_id: str) -> Conversation:
    row = await (
        await conn.execute(
            _CONVERSATION + " WHERE c.id = %s AND c.user_id = %s", (conversation_id, user_id)
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such conversation")
    return Conversation(*row)


async def get_message(
    conn: psycopg.AsyncConnection, user_id: str, conversation_id: str, message_id: str
) -> Message:
    try:
        message_id = str(uuid.UUID(message_id))
    except ValueError:
        raise NotFound("no such message") from None
    row = await (
        await conn.execute(
            _MESSAGE + " WHERE m.id = %s AND m.conversation_id = %s AND c.user_id = %s",
            (message_id, conversation_id, user_id),
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such message")
    return Message(*row)


async def latest_id(conn: psycopg.AsyncConnection, conversation_id: str) -> str | None:
    """The newest turn (not a summary): where a message with no explicit parent continues.
    The caller has already checked the conversation is the user's."""
    row = await (
        await conn.execute(
            "SELECT id::text FROM message WHERE conversation_id = %s AND role <> 'summary'"
            " ORDER BY seq DESC LIMIT 1",
            (conversation_id,),
        )
    ).fetchone()
    return row[0] if row else None


async def mark_failed(
    conn: psycopg.AsyncConnection, user_id: str, message_id: str, failure: dict[str, Any]
) -> None:
    """Notes on a user's message that its turn failed with no answer (`meta.turn_failed`), so
    the conversation shows why and the user can regenerate."""
    await conn.execute(
        "UPDATE message m SET meta = m.meta || jsonb_build_object('turn_failed', %s::jsonb)"
        " FROM conversation c WHERE m.id = %s AND c.id = m.conversation_id AND c.user_id = %s",
        (Jsonb(failure), message_id, user_id),
    )
