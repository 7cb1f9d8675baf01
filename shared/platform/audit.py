"""The security audit log: append-only rows in `audit_event`, each hashed over its content and
the previous row's hash (a chain that `verify_chain` re-walks to find tampering).

Writers serialise on a transaction-scoped advisory lock so the chain has one order; security
events are rare enough that this costs nothing. Write the event in the same transaction as the
change it records when there is one (`conn=`), so neither exists without the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.platform.context import current_request_id
from shared.platform.db.pool import Pool

GENESIS = "0" * 64
_LOCK_KEY = 0x5EED_A0D1
_COLUMNS = (
    "id, occurred_at, event, actor_user_id::text, subject_user_id::text, ip_addr, user_agent,"
    " request_id, details, prev_hash, hash"
)


@dataclass(frozen=True)
class AuditEvent:
    id: int
    occurred_at: datetime
    event: str
    actor_user_id: str | None
    subject_user_id: str | None
    ip_addr: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def public(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["occurred_at"] = _timestamp(self.occurred_at)
        return out


@dataclass(frozen=True)
class Actor:
    """Who did it and from where (the request's client), for every event of one request."""

    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _fields(
    occurred_at: datetime,
    event: str,
    actor: str | None,
    subject: str | None,
    ip: str | None,
    user_agent: str | None,
    request_id: str | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    return {
        "occurred_at": _timestamp(occurred_at),
        "event": event,
        "actor_user_id": actor,
        "subject_user_id": subject,
        "ip_addr": ip,
        "user_agent": user_agent,
        "request_id": request_id,
        "details": details,
    }


async def record(
    target: Pool | psycopg.AsyncConnection,
    event: str,
    *,
    actor: Actor,
    subject_user_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Appends one event; `target` is a pool (own transaction) or a connection in the caller's
    transaction. Returns the event id."""
    if isinstance(target, psycopg.AsyncConnection):
        async with target.transaction():
            return await _append(target, event, actor, subject_user_id, details or {})
    async with target.connection() as conn, conn.transaction():
        return await _append(conn, event, actor, subject_user_id, details or {})


async def _append(
    conn: psycopg.AsyncConnection,
    event: str,
    actor: Actor,
    subject: str | None,
    details: dict[str, Any],
) -> int:
    await lock_for_writing(conn)
    cursor = await conn.execute("SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1")
    last = await cursor.fetchone()
    prev_hash = last[0] if last else GENESIS
    occurred_at = datetime.now(UTC)
    user_agent = (actor.user_agent or "")[:512] or None
    request_id = current_request_id()
    fields = _fields(
        occurred_at, event, actor.user_id, subject, actor.ip, user_agent, request_id, details
    )
    cursor = await conn.execute(
        "INSERT INTO audit_event (occurred_at, event, actor_user_id, subject_user_id, ip_addr,"
        " user_agent, request_id, details, prev_hash, hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            occurred_at,
            event,
            actor.user_id,
            subject,
            actor.ip,
            user_agent,
            request_id,
            Jsonb(details),
            prev_hash,
            _digest(prev_hash, fields),
        ),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _event(row: tuple[Any, ...]) -> AuditEvent:
    return AuditEvent(*row)


def _hash_of(ev: AuditEvent, prev_hash: str) -> str:
    """The hash `_append` gave the event, linked to `prev_hash`."""
    fields = _fields(ev.occurred_at, ev.event, ev.actor_user_id, ev.subject_user_id, ev.ip_addr,
                     ev.user_agent, ev.request_id, ev.details)  # fmt: skip
    return _digest(prev_hash, fields)


async def _in_order(
    conn: psycopg.AsyncConnection, *, after_id: int, batch: int
) -> AsyncGenerator[AuditEvent, None]:
    """Every event after `after_id`, in id order, read `batch` rows at a time (each batch is
    read whole, so the caller may write on `conn` between events)."""
    while True:
        cursor = await conn.execute(
            f"SELECT {_COLUMNS} FROM audit_event WHERE id > %s"  # noqa: S608 - constant
            " ORDER BY id LIMIT %s",
            (after_id, batch),
        )
        rows = [_event(row) for row in await cursor.fetchall()]
        if not rows:
            return
        for ev in rows:
            yield ev
        after_id = rows[-1].id


async def lock_for_writing(conn: psycopg.AsyncConnection) -> None:
    """The writers' lock, to the end of the caller's transaction: the chain has one order."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


async def reseal(conn: psycopg.AsyncConnection, *, after_id: int, batch: int = 1000) -> None:
    """Links and hashes again every row after `after_id`, as `_append` made them, so that
    `verify_chain` holds over rows rewritten in place (a deleted user's pseudonymised events,
    the one rewrite the table's trigger lets through). Hold `lock_for_writing` first."""
    cursor = await conn.execute(
        "SELECT hash FROM audit_event WHERE id <= %s ORDER BY id DESC LIMIT 1", (after_id,)
    )
    last = await cursor.fetchone()
    prev_hash = last[0] if last else GENESIS
    async for ev in _in_order(conn, after_id=after_id, batch=batch):
        digest = _hash_of(ev, prev_hash)
        if ev.prev_hash != prev_hash or ev.hash != digest:
            await conn.execute(
                "UPDATE audit_event SET prev_hash = %s, hash = %s WHERE id = %s",
                (prev_hash, digest, ev.id),
            )
        prev_hash = digest


async def page(
    pool: Pool,
    *,
    before_id: int | None,
    limit: int,
    event: str | None = None,
    user_id: str | None = None,
) -> list[AuditEvent]:
    """Newest first; `before_id` is the cursor. Admin-only reading (no user scoping)."""
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if before_id is not None:
        clauses.append("id < %s")
        params.append(before_id)
    if event is not None:
        clauses.append("event = %s")
        params.append(event)
    if user_id is not None:
        clauses.append("(subject_user_id = %s OR actor_user_id = %s)")
        params += [user_id, user_id]
    async with pool.connection() as conn:
        cursor = await conn.execute(
            f"SELECT {_COLUMNS} FROM audit_event WHERE {' AND '.join(clauses)}"  # noqa: S608
            " ORDER BY id DESC LIMIT %s",
            (*params, limit),
        )
        return [_event(row) for row in await cursor.fetchall()]


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_id: int | None


async def verify_chain(pool: Pool, *, batch: int = 1000) -> ChainReport:
    """Recomputes every hash in id order: the first row whose stored hash or link disagrees
    is where the log was altered."""
    prev_hash, checked = GENESIS, 0
    async with (
        pool.connection() as conn,
        aclosing(_in_order(conn, after_id=0, batch=batch)) as events,
    ):
        async for ev in events:
            if ev.prev_hash != prev_hash or ev.hash != _hash_of(ev, prev_hash):
                return ChainReport(ok=False, checked=checked, first_broken_id=ev.id)
            prev_hash, checked = ev.hash, checked + 1
    return ChainReport(ok=True, checked=checked, first_broken_id=None)
