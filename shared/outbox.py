"""Enqueue after commit (DESIGN.md §1).

`enqueue` writes the message in the caller's transaction, so it exists only if the change it
announces commits. `relay_once` sends committed rows to SQS and marks them sent; it runs right
after a function's commit (best effort), in the local dispatcher's loop, and on a schedule in
AWS. Delivery is at least once: consumers are idempotent on the business key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = (1, 5, 30, 120, 600)


async def enqueue(
    conn: psycopg.AsyncConnection, *, queue: str, body: dict[str, Any], dedup_key: str | None = None
) -> int | None:
    """Returns the outbox id, or None when `dedup_key` was already enqueued."""
    row = await (
        await conn.execute(
            "INSERT INTO outbox_message (queue, body, dedup_key) VALUES (%s, %s, %s)"
            " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            (queue, Jsonb(body), dedup_key),
        )
    ).fetchone()
    return row[0] if row else None


async def relay_once(
    pool: AsyncConnectionPool, sqs: Any, queue_urls: dict[str, str], *, limit: int = 100
) -> int:
    """Sends up to `limit` due rows; returns how many were sent. Rows being sent by another
    relay are skipped (SKIP LOCKED), so any number of relays may run."""
    sent = 0
    async with pool.connection() as conn, conn.transaction():
        rows = await (
            await conn.execute(
                "SELECT id, queue, body, dedup_key, attempts FROM outbox_message"
                " WHERE sent_at IS NULL AND available_at <= now()"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (limit,),
            )
        ).fetchall()
        for outbox_id, queue, body, dedup_key, attempts in rows:
            try:
                url = queue_urls[queue]
                attributes = {"outbox_id": {"DataType": "Number", "StringValue": str(outbox_id)}}
                if dedup_key:
                    attributes["dedup_key"] = {"DataType": "String", "StringValue": dedup_key}
                await asyncio.to_thread(
                    sqs.send_message,
                    QueueUrl=url,
                    MessageBody=json.dumps(body),
                    MessageAttributes=attributes,
                )
            except Exception as exc:
                delay = RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S) - 1)]
                log.warning(
                    "outbox %s to %s failed (attempt %s): %s", outbox_id, queue, attempts + 1, exc
                )
                await conn.execute(
                    "UPDATE outbox_message SET attempts = attempts + 1, last_error = %s,"
                    " available_at = now() + make_interval(secs => %s) WHERE id = %s",
                    (str(exc)[:500], delay, outbox_id),
                )
                continue
            await conn.execute(
                "UPDATE outbox_message SET sent_at = now(), attempts = attempts + 1 WHERE id = %s",
                (outbox_id,),
            )
            sent += 1
    return sent
