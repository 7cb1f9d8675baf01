"""Preference events in Postgres: one per (user, answer). Every function takes the acting user
and filters on it: another user's message or event is simply not found (404, never 403).

An event keeps the context it was given in (the user's message the answer replied to) and that
context's MiniLM embedding (the vector the router embeds a turn with: the same text, the same
cached vector), so clustering and training see what the router saw."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pgvector import Vector
from psycopg.types.json import Jsonb

from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound, ValidationError

SIGNALS = ("like", "dislike", "always", "never")
POSITIVE = frozenset({"like", "always"})
INSTRUCTION_SIGNALS = frozenset({"always", "never"})
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class RatedMessage:
    """The assistant's answer being rated, and the user's message it answered."""

    message_id: str
    conversation_id: str
    content: str
    context_text: str


@dataclass(frozen=True)
class PreferenceEvent:
    id: int
    conversation_id: str
    message_id: str
    explicit_signal: str
    score: float | None
    corrected_text: str | None
    notes: str | None
    context_text: str | None
    filtered_reason: str | None
    trainable: bool
    job_id: str | None
    job_status: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Written:
    event: PreferenceEvent
    replaced: bool


def default_score(signal: str) -> float:
    return 1.0 if signal in POSITIVE else -1.0


def check_score(signal: str, score: float | None) -> float:
    """A score agrees with its signal: like/always in [0, 1], dislike/never in [-1, 0]."""
    if score is None:
        return default_score(signal)
    if (signal in POSITIVE and score < 0) or (signal not in POSITIVE and score > 0):
        raise ValidationError(
            f"score {score} contradicts the signal {signal!r}",
            details=[{"loc": ["score"], "msg": "sign must agree with explicit_signal",
                      "type": "value_error"}],
        )  # fmt: skip
    return score


def event_id(raw: str) -> int:
    """A path's event id; anything but a positive 64-bit integer names no event (404)."""
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise NotFound(f"no such preference event: {raw[:32]!r}")
    return int(raw)


async def rated_message(
    conn: Connection, user_id: str, conversation_id: str, message_id: str
) -> RatedMessage:
    """The answer to rate: an assistant message of one of the user's own conversations."""
    try:
        conversation_id, message_id = str(uuid.UUID(conversation_id)), str(uuid.UUID(message_id))
    except ValueError:
        raise NotFound("no such message") from None
    row = await (
        await conn.execute(
            "SELECT m.sender, m.content, m.seq, m.parent_id::text FROM message m"
            " JOIN conversation c ON c.id = m.conversation_id"
            " WHERE m.id = %s AND m.conversation_id = %s AND c.user_id = %s",
            (message_id, conversation_id, user_id),
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such message")
    sender, content, seq, parent_id = row
    if sender != "assistant":
        raise ValidationError(
            "feedback rates an assistant's answer, not a user message",
            details=[{"loc": ["message_id"], "msg": f"is a {sender} message",
                      "type": "not_assistant"}],
        )  # fmt: skip
    asked = await (
        await conn.execute(
            "SELECT content FROM message WHERE conversation_id = %(c)s AND sender = 'user'"
            " AND (id = %(parent)s::uuid OR seq < %(seq)s)"
            " ORDER BY (id = %(parent)s::uuid) DESC NULLS LAST, seq DESC LIMIT 1",
            {"c": conversation_id, "parent": parent_id, "seq": seq},
        )
    ).fetchone()
    return RatedMessage(message_id, conversation_id, content, asked[0] if asked else "")


_EVENT = """
SELECT e.id, e.conversation_id::text, e.message_id::text, e.explicit_signal, e.score,
       e.corrected_text, e.notes, e.context_text, e.filtered_reason,
       (e.filtered_reason IS NULL AND (p.reset_at IS NULL OR e.updated_at > p.reset_at)),
       e.job_id::text, j.status, e.created_at, e.updated_at
  FROM preference_event e
  LEFT JOIN personalization p ON p.user_id = e.user_id
  LEFT JOIN training_job j ON j.id = e.job_id
"""


_UPSERT = """
INSERT INTO preference_event AS e (user_id, conversation_id, message_id, explicit_signal, score,
       corrected_text, notes, context_embedding, context_text, filtered_reason, meta)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (user_id, message_id) DO UPDATE SET
       explicit_signal = EXCLUDED.explicit_signal, score = EXCLUDED.score,
       corrected_text = EXCLUDED.corrected_text, notes = EXCLUDED.notes,
       context_embedding = EXCLUDED.context_embedding, context_text = EXCLUDED.context_text,
       filtered_reason = EXCLUDED.filtered_reason, updated_at = now(),
       meta = e.meta || jsonb_build_object('replaced',
                                           coalesce((e.meta->>'replaced')::int, 0) + 1),
       job_id = (SELECT j.id FROM training_job j WHERE j.id = e.job_id AND j.status = 'queued')
RETURNING id, (xmax <> 0)
"""


async def upsert(
    conn: Connection,
    user_id: str,
    rated: RatedMessage,
    *,
    signal: str,
    score: float,
    corrected_text: str | None,
    notes: str | None,
    embedding: Sequence[float],
    filtered_reason: str | None,
) -> Written:
    """Writes the event, replacing the user's earlier one on the same answer. A replaced event
    counts as new again (it says something new), unless a job still waiting to start holds it:
    that job reads it as it is now."""
    params = (
        user_id, rated.conversation_id, rated.message_id, signal, score, corrected_text, notes,
        Vector(list(embedding)), rated.context_text or None, filtered_reason, Jsonb({}),
    )  # fmt: skip
    row = await (await conn.execute(_UPSERT, params)).fetchone()
    assert row is not None
    return Written(await get(conn, user_id, int(row[0])), bool(row[1]))


async def get(conn: Connection, user_id: str, event: int) -> PreferenceEvent:
    row = await (
        await conn.execute(_EVENT + " WHERE e.id = %s AND e.user_id = %s", (event, user_id))
    ).fetchone()
    if row is None:
        raise NotFound("no such preference event")
    return PreferenceEvent(*row)


async def list_for(
    conn: Connection,
    user_id: str,
    *,
    cursor: str | None,
    limit: int,
    conversation_id: str | None = None,
    signal: str | None = None,
) -> tuple[list[PreferenceEvent], str | None]:
    """The user's events, newest first (keyset on the id)."""
    where, params = ["e.user_id = %(user)s"], {"user": user_id, "n": probe_size(limit)}
    if cursor is not None:
        (after,) = decode_cursor(cursor, 1)
        if type(after) is not int:
            raise ValidationError("invalid cursor")
        where.append("e.id < %(after)s")
        params["after"] = after
    if conversation_id is not None:
        try:
            params["conversation"] = str(uuid.UUID(conversation_id))
        except ValueError:
            raise ValidationError(
                "conversation_id must be a conversation's id",
                details=[{"loc": ["conversation_id"], "msg": "not a UUID", "type": "uuid"}],
            ) from None
        where.append("e.conversation_id = %(conversation)s")
    if signal is not None:
        where.append("e.explicit_signal = %(signal)s")
        params["signal"] = signal
    cursor_ = await conn.execute(
        _EVENT + " WHERE " + " AND ".join(where) + " ORDER BY e.id DESC LIMIT %(n)s", params
    )
    rows = [PreferenceEvent(*r) for r in await cursor_.fetchall()]
    return keyset_page(rows, limit, lambda e: encode_cursor(e.id))


async def delete(conn: Connection, user_id: str, event: int) -> None:
    """Deletes the event (and the instruction its notes made). A job that has not started
    no longer lists it; every later job reads the events that exist, so none trains on it."""
    row = await (
        await conn.execute(
            "DELETE FROM preference_event WHERE id = %s AND user_id = %s RETURNING id",
            (event, user_id),
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such preference event")
    await conn.execute(
        "UPDATE training_job SET preference_event_ids = array_remove(preference_event_ids, %s),"
        " num_events = cardinality(array_remove(preference_event_ids, %s)), updated_at = now()"
        " WHERE user_id = %s AND status = 'queued' AND %s = ANY(preference_event_ids)",
        (event, event, user_id, event),
    )
