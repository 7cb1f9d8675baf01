"""The architect step's runs as rows (`architect_run`, sql/021): an admin's "run now" is a
queued row and one ArchitectQueue message, so the request answers at once (one model call
per artifact outlasts API Gateway's 29 seconds) and the console follows the row; the schedule
records its runs too.

A run's life: `queued` → `running` → `done` (the report), `skipped` (the report says why: the
switch is off, another run holds the lock) or `failed` (the error). At most one run is queued
or running (a partial unique index): asking again while one is waits on that one. A message
delivered twice finds its run no longer `queued` and does nothing. A run left `running` past
the longest a run may take lost its worker: its message, back from the queue, runs it again
(`claim`), and a new request or schedule tick marks it `failed` first (`expire_stale`), so a
dead worker never blocks the next run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from shared.platform import outbox
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound

ARCHITECT_QUEUE = "ArchitectQueue"
MAX_ERROR = 500
# The columns of ArchitectRun, in its order (every query below names them).
_SELECT = """
SELECT id, trigger, requested_by::text, status, report, error, created_at, started_at,
       finished_at FROM architect_run"""
_RETURNING = """
RETURNING id, trigger, requested_by::text, status, report, error, created_at, started_at,
          finished_at"""


@dataclass(frozen=True)
class ArchitectRun:
    id: int
    trigger: str  # schedule | admin
    requested_by: str | None
    status: str  # queued | running | done | skipped | failed
    report: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def message(run_id: int) -> dict[str, Any]:
    return {"run_id": run_id}


async def expire_stale(conn: Connection, stale_after_s: int) -> int:
    """Runs `running` longer than `stale_after_s` (their worker died) become `failed`."""
    cursor = await conn.execute(
        "UPDATE architect_run SET status = 'failed', finished_at = now(),"
        " error = 'no end recorded within ' || %s || ' s: its worker stopped'"
        " WHERE status = 'running' AND started_at < now() - make_interval(secs => %s)",
        (stale_after_s, stale_after_s),
    )
    return cursor.rowcount


async def request(
    conn: Connection, *, requested_by: str | None, stale_after_s: int
) -> tuple[ArchitectRun, bool]:
    """An admin's run: a new queued row and its message (in the caller's transaction; flush
    the outbox after commit), or the run already queued or running. (run, queued now?)"""
    async with conn.transaction():
        await expire_stale(conn, stale_after_s)
        try:
            async with conn.transaction():  # a savepoint: a lost race leaves the outer intact
                run = await _one(
                    conn,
                    "\nINSERT INTO architect_run (trigger, requested_by, status)"
                    " VALUES ('admin', %s, 'queued')" + _RETURNING,
                    (requested_by,),
                )
        except psycopg.errors.UniqueViolation:
            active = await _one(
                conn,
                _SELECT + " WHERE status IN ('queued', 'running')",
                (),
            )
            if active is not None:
                return active, False
            raise  # it ended between the two statements: let the caller retry
        assert run is not None
        await outbox.enqueue(conn, queue=ARCHITECT_QUEUE, body=message(run.id),
                             dedup_key=f"architect_run:{run.id}")  # fmt: skip
        return run, True


async def start_scheduled(conn: Connection, *, stale_after_s: int) -> ArchitectRun | None:
    """The schedule's run, `running` at once; None while another run is queued or running
    (the schedule skips that turn)."""
    try:
        async with conn.transaction():
            await expire_stale(conn, stale_after_s)
            return await _one(
                conn,
                "\nINSERT INTO architect_run (trigger, status, started_at)"
                " VALUES ('schedule', 'running', now())" + _RETURNING,
                (),
            )
    except psycopg.errors.UniqueViolation:
        return None


async def claim(conn: Connection, run_id: int, *, stale_after_s: int) -> ArchitectRun | None:
    """`queued` (or `running` past `stale_after_s`: its worker died) → `running`; None when
    there is nothing to run (ended, under way, or gone)."""
    return await _one(
        conn,
        "\nUPDATE architect_run SET status = 'running', started_at = now(), error = NULL"
        " WHERE id = %s AND (status = 'queued' OR (status = 'running'"
        " AND started_at < now() - make_interval(secs => %s)))" + _RETURNING,
        (run_id, stale_after_s),
    )


async def requeue(conn: Connection, run_id: int) -> None:
    """A run whose try failed goes back to `queued` for its message's next delivery."""
    await conn.execute(
        "UPDATE architect_run SET status = 'queued', error = NULL, finished_at = NULL"
        " WHERE id = %s AND status = 'running'",
        (run_id,),
    )


async def finish(
    conn: Connection, run_id: int, *, report: dict[str, Any] | None, error: str | None = None
) -> None:
    """Ends a running run: `failed` with an error, else `skipped` when the report says the
    model was not asked, else `done`."""
    status = "failed" if error else "skipped" if (report or {}).get("skipped") else "done"
    await conn.execute(
        "UPDATE architect_run SET status = %s, report = %s, error = %s, finished_at = now()"
        " WHERE id = %s AND status IN ('queued', 'running')",
        (status, Jsonb(report) if report is not None else None,
         error[:MAX_ERROR] if error else None, run_id),
    )  # fmt: skip


async def get(conn: Connection, run_id: int) -> ArchitectRun:
    run = await _one(conn, _SELECT + " WHERE id = %s", (run_id,))
    if run is None:
        raise NotFound("no such architect run")
    return run


async def recent(
    conn: Connection, *, before: int | None, limit: int
) -> tuple[list[ArchitectRun], int | None]:
    """The newest runs first (ids below `before`), and the id to continue from."""
    cursor = await conn.cursor(row_factory=class_row(ArchitectRun)).execute(
        _SELECT + " WHERE (%(before)s::bigint IS NULL OR id < %(before)s)"
        " ORDER BY id DESC LIMIT %(n)s",
        {"before": before, "n": limit + 1},
    )
    rows = await cursor.fetchall()
    page = rows[:limit]
    return page, page[-1].id if len(rows) > limit and page else None


async def _one(conn: Connection, sql: str, params: Any) -> ArchitectRun | None:
    cursor = await conn.cursor(row_factory=class_row(ArchitectRun)).execute(sql, params)
    return await cursor.fetchone()
