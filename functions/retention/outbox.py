"""Sent outbox rows past OUTBOX_RETENTION_DAYS (sql/008_outbox.sql, 014_outbox_done.sql).

A row is history once `sent_at` is set and its consumers had every chance to act on it: SQS
keeps a message 4 days at most, the mail re-drive looks one day back (`outbox.redrive_lost`),
and every consumer is idempotent on its own owner table, so a deleted row's dedup key being
reusable does no harm. Rows never sent are pending work and always stay. One exception: the
training sweep finds a still-queued job's message through its outbox row
(`jobs.requeue_lost`), so those rows stay while their job is queued.
"""

from __future__ import annotations

from typing import Any

from shared.domain.preferences.schedule import TRAIN_QUEUE

# A body's job id is cast only once it is a UUID: a malformed one must not stop the run.
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_DELETE_BATCH = (
    "DELETE FROM outbox_message WHERE id IN ("
    " SELECT o.id FROM outbox_message o"
    " WHERE o.sent_at IS NOT NULL AND o.sent_at < now() - make_interval(secs => %(age_s)s)"
    "  AND NOT (o.queue = %(train)s AND EXISTS ("
    "   SELECT 1 FROM training_job j WHERE j.status = 'queued' AND j.id = CASE"
    "    WHEN o.body->>'job_id' ~* %(uuid)s THEN (o.body->>'job_id')::uuid END))"
    " ORDER BY o.id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
)


async def prune_sent(pool: Any, *, older_than_days: float, batch: int, max_batches: int) -> int:
    """Deletes in batches, each its own short transaction (the relay keeps running beside
    it); returns how many rows went."""
    params = {"age_s": older_than_days * 86_400, "train": TRAIN_QUEUE, "batch": batch,
              "uuid": UUID_PATTERN}  # fmt: skip
    deleted = 0
    for _ in range(max_batches):
        async with pool.connection() as conn, conn.transaction():
            count = (await conn.execute(_DELETE_BATCH, params)).rowcount
        deleted += count
        if count < batch:
            break
    return deleted
