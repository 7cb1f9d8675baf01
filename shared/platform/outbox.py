"""Enqueue after commit (DESIGN.md §1).

`enqueue` writes the message in the caller's transaction, so it exists only if the change it
announces commits. `relay_once` sends committed rows to SQS and marks them sent; it runs right
after a function's commit (best effort), in the local dispatcher's loop, and on a schedule in
AWS. Delivery is at least once: consumers are idempotent on the business key.

A consumer without an owner table of its own (mail) uses its outbox row as one: `claim` locks
the row and says whether the work is still to do, `mark_done` records it in the same
transaction. `redrive_lost` sends again the rows whose message went to a queue that has since
lost its messages (the local in-memory SQS server restarted) and whose work is not done.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.platform.db.pool import Pool
from shared.platform.tracing import current_traceparent, message_attribute

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = (1, 5, 30, 120, 600)
SQS_BATCH = 10  # SendMessageBatch's limit


async def enqueue(
    conn: psycopg.AsyncConnection,
    *,
    queue: str,
    body: dict[str, Any],
    dedup_key: str | None = None,
    delay_s: float = 0.0,
) -> int | None:
    """Returns the outbox id, or None when `dedup_key` was already enqueued. `delay_s`: the
    relay sends the message no sooner (held in Postgres, so longer than SQS's 15 minutes).
    The trace in hand goes with the row, so its consumer continues it (platform/tracing.py)."""
    row = await (
        await conn.execute(
            "INSERT INTO outbox_message (queue, body, dedup_key, available_at, traceparent)"
            " VALUES (%s, %s, %s, now() + make_interval(secs => %s), %s)"
            " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            (queue, Jsonb(body), dedup_key, max(0.0, float(delay_s)), current_traceparent()),
        )
    ).fetchone()
    return row[0] if row else None


async def relay_once(pool: Pool, sqs: Any, queue_urls: dict[str, str], *, limit: int = 100) -> int:
    """Sends up to `limit` due rows; returns how many were sent. Rows being sent by another
    relay are skipped (SKIP LOCKED), so any number of relays may run."""
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            "SELECT id, queue, body, dedup_key, attempts, traceparent FROM outbox_message"
            " WHERE sent_at IS NULL AND available_at <= now()"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        )
        rows = await cursor.fetchall()
        by_queue: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            by_queue[row[1]].append(row)
        sent: list[int] = []
        failed: dict[int, tuple[int, str]] = {}
        for queue, queue_rows in by_queue.items():
            for start in range(0, len(queue_rows), SQS_BATCH):
                chunk = queue_rows[start : start + SQS_BATCH]
                ok, errors = await _send_chunk(sqs, queue_urls.get(queue), queue, chunk)
                sent += ok
                failed.update(errors)
        if sent:
            await conn.execute(
                "UPDATE outbox_message SET sent_at = now(), attempts = attempts + 1"
                " WHERE id = ANY(%s)",
                (sent,),
            )
        for outbox_id, (attempts, error) in failed.items():
            delay = RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S) - 1)]
            log.warning("outbox %s failed (attempt %s): %s", outbox_id, attempts + 1, error)
            await conn.execute(
                "UPDATE outbox_message SET attempts = attempts + 1, last_error = %s,"
                " available_at = now() + make_interval(secs => %s) WHERE id = %s",
                (error[:500], delay, outbox_id),
            )
    return len(sent)


async def flush(pool: Pool, sqs: Any, queues: Any, *, limit: int = 10) -> None:
    """Sends what a request just committed now rather than at the relay's next sweep; best
    effort (a failure leaves the rows for the sweep). `queues` is a QueueDirectory."""
    try:
        await relay_once(pool, sqs, await queues.all_urls(), limit=limit)
    except Exception as exc:
        log.warning("outbox flush failed: %s", type(exc).__name__)


async def _send_chunk(
    sqs: Any, url: str | None, queue: str, rows: list[tuple[Any, ...]]
) -> tuple[list[int], dict[int, tuple[int, str]]]:
    """One SendMessageBatch call; returns (sent ids, {failed id: (attempts, reason)})."""
    if url is None:
        return [], {row[0]: (row[4], f"unknown queue {queue}") for row in rows}
    entries = []
    for outbox_id, _, body, dedup_key, _, traceparent in rows:
        attributes = {"outbox_id": {"DataType": "Number", "StringValue": str(outbox_id)}}
        if dedup_key:
            attributes["dedup_key"] = {"DataType": "String", "StringValue": dedup_key}
        attributes.update(message_attribute(traceparent))
        entries.append(
            {"Id": str(outbox_id), "MessageBody": json.dumps(body), "MessageAttributes": attributes}
        )
    attempts = {row[0]: row[4] for row in rows}
    try:
        result = await asyncio.to_thread(sqs.send_message_batch, QueueUrl=url, Entries=entries)
    except Exception as exc:
        return [], {row[0]: (row[4], str(exc)) for row in rows}
    sent = [int(item["Id"]) for item in result.get("Successful", [])]
    failed = {
        int(item["Id"]): (attempts[int(item["Id"])], item.get("Message") or item.get("Code", ""))
        for item in result.get("Failed", [])
    }
    return sent, failed


async def claim(conn: psycopg.AsyncConnection, outbox_id: int) -> bool:
    """Locks an outbox row for its consumer's transaction; False when its work is already done
    (a redelivered message) or the row is gone. A second delivery running at the same time
    waits here, then sees the work done: no double effect."""
    row = await (
        await conn.execute(
            "SELECT done_at FROM outbox_message WHERE id = %s FOR UPDATE", (outbox_id,)
        )
    ).fetchone()
    return row is not None and row[0] is None


async def mark_done(conn: psycopg.AsyncConnection, outbox_id: int) -> None:
    await conn.execute(
        "UPDATE outbox_message SET done_at = now() WHERE id = %s AND done_at IS NULL",
        (outbox_id,),
    )


async def redrive_lost(
    conn: psycopg.AsyncConnection, *, queue: str, lost_before: Any, retention_s: int
) -> int:
    """Rows of `queue` sent before `lost_before` (when the queue was created again), within the
    queue's retention and not done, are made due again: the relay sends them with their
    original outbox id, so a consumer that did the work after all skips it."""
    cursor = await conn.execute(
        "UPDATE outbox_message SET sent_at = NULL, available_at = now()"
        " WHERE queue = %s AND sent_at IS NOT NULL AND done_at IS NULL AND sent_at < %s"
        " AND sent_at > now() - make_interval(secs => %s)",
        (queue, lost_before, retention_s),
    )
    return cursor.rowcount
