"""Export rows (`account_export`): queued by the user, claimed by the export consumer, ready
with the zip's size and expiry, failed with the reason, expired once the zip is removed.

Every read is scoped to the owner: another user's export is simply not found (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from shared.domain.account_data.errors import ExportInProgress
from shared.platform.errors import NotFound

EXPORTS_PREFIX = "exports"
LISTED = 10  # GET /v1/me/exports: the newest ten
_COLUMNS = (
    "id::text, user_id::text, status, object_key, size_bytes, error, created_at, finished_at,"
    " expires_at"
)


@dataclass(frozen=True)
class Export:
    id: str
    user_id: str
    status: str
    object_key: str | None
    size_bytes: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None


def object_key(user_id: str, export_id: str) -> str:
    """exports/{uid}/{id}.zip: not under users/{uid}/, so a purge deleting that prefix and an
    export reading it never touch each other's objects."""
    return f"{EXPORTS_PREFIX}/{user_id}/{export_id}.zip"


async def create(conn: psycopg.AsyncConnection, user_id: str) -> Export:
    """A queued export; 409 `export_in_progress` while one is queued or running."""
    try:
        async with conn.transaction():
            row = await (
                await conn.execute(
                    f"INSERT INTO account_export (user_id) VALUES (%s) RETURNING {_COLUMNS}",  # noqa: S608 - constant
                    (user_id,),
                )
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise ExportInProgress("an export of this account is already on its way") from None
    assert row is not None
    return Export(*row)


async def get(conn: psycopg.AsyncConnection, user_id: str, export_id: str) -> Export:
    row = await (
        await conn.execute(
            f"SELECT {_COLUMNS} FROM account_export WHERE id = %s AND user_id = %s",  # noqa: S608 - constant
            (export_id, user_id),
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such export")
    return Export(*row)


async def recent(conn: psycopg.AsyncConnection, user_id: str) -> list[Export]:
    rows = await (
        await conn.execute(
            f"SELECT {_COLUMNS} FROM account_export WHERE user_id = %s"  # noqa: S608 - constant
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (user_id, LISTED),
        )
    ).fetchall()
    return [Export(*row) for row in rows]


async def claim(
    conn: psycopg.AsyncConnection, export_id: str, *, stale_after_s: float
) -> Export | None:
    """The export, now `running`, if it is queued (or its worker died mid-run: running past
    `stale_after_s`); None when a redelivered message finds it done, failed or gone."""
    row = await (
        await conn.execute(
            "UPDATE account_export SET status = 'running', started_at = now()"  # noqa: S608
            " WHERE id = %s AND (status = 'queued' OR (status = 'running'"
            "   AND started_at < now() - make_interval(secs => %s)))"
            f" RETURNING {_COLUMNS}",
            (export_id, stale_after_s),
        )
    ).fetchone()
    return Export(*row) if row else None


async def mark_ready(
    conn: psycopg.AsyncConnection, export_id: str, *, key: str, size_bytes: int, ttl_s: int
) -> Export:
    row = await (
        await conn.execute(
            "UPDATE account_export SET status = 'ready', object_key = %s, size_bytes = %s,"  # noqa: S608
            " finished_at = now(), expires_at = now() + make_interval(secs => %s), error = NULL"
            f" WHERE id = %s RETURNING {_COLUMNS}",
            (key, size_bytes, ttl_s, export_id),
        )
    ).fetchone()
    if row is None:  # the account was deleted while its export ran
        raise NotFound("the export is gone")
    return Export(*row)


async def mark_failed(conn: psycopg.AsyncConnection, export_id: str, error: str) -> None:
    await conn.execute(
        "UPDATE account_export SET status = 'failed', finished_at = now(), error = %s"
        " WHERE id = %s AND status IN ('queued', 'running')",
        (error[:1000], export_id),
    )


async def requeue(conn: psycopg.AsyncConnection, export_id: str, error: str) -> None:
    """Back to `queued` for the message's next delivery (the reason kept meanwhile)."""
    await conn.execute(
        "UPDATE account_export SET status = 'queued', error = %s WHERE id = %s"
        " AND status = 'running'",
        (error[:1000], export_id),
    )


async def due_to_expire(
    conn: psycopg.AsyncConnection, *, limit: int
) -> list[tuple[str, str | None]]:
    """(id, object key) of ready exports past their expiry, oldest first."""
    rows = await (
        await conn.execute(
            "SELECT id::text, object_key FROM account_export WHERE status = 'ready'"
            " AND expires_at <= now() ORDER BY expires_at LIMIT %s",
            (limit,),
        )
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


async def mark_expired(conn: psycopg.AsyncConnection, export_id: str) -> None:
    await conn.execute(
        "UPDATE account_export SET status = 'expired', object_key = NULL WHERE id = %s",
        (export_id,),
    )


def public(export: Export) -> dict[str, Any]:
    """The contract's Export object."""
    return {
        "id": export.id, "status": export.status, "created_at": export.created_at,
        "finished_at": export.finished_at, "expires_at": export.expires_at,
        "size_bytes": export.size_bytes, "error": export.error,
    }  # fmt: skip
