"""Re-driving work whose queue message was lost with the local in-memory SQS server.

moto keeps messages in memory, so when it restarts (a crash the supervisor repaired, or a new
`make run`) every message it held is gone, while Postgres still says the work is pending. Each
queue's consumer owns a table that says what is pending; the re-driver of that queue queues it
again through the outbox. A queue's `CreatedTimestamp` tells when its messages may have been
lost: work queued before the queue (re)appeared and not sent to it since is re-driven, when the
dispatcher starts and whenever it sees the queue re-created. Consumers are idempotent on the
business key, so work that was not lost after all (still running somewhere) has no double
effect. In AWS, SQS does not lose messages; there the sweeps remain the backstop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shared.domain.accounts.mail import MAIL_QUEUE
from shared.domain.preferences import jobs
from shared.domain.preferences.schedule import TRAIN_QUEUE, TrainingPolicy
from shared.domain.rag import reembed
from shared.domain.rag.contexts import INGEST_QUEUE
from shared.platform import outbox
from shared.platform.settings import Settings

log = logging.getLogger("dispatcher.redrive")

# (connection, settings, lost_before) -> how many pieces of work were queued again
Redriver = Callable[[Any, Settings, dt.datetime], Awaitable[int]]


async def _ingest(conn: Any, settings: Settings, lost_before: dt.datetime) -> int:
    # Owner table: context_source (pending/processing = not ready yet).
    return await reembed.redrive_lost(
        conn, version=settings.rag_embedding_version, lost_before=lost_before
    )


async def _mail(conn: Any, settings: Settings, lost_before: dt.datetime) -> int:
    # Owner table: the outbox row itself (done_at is set by the mailer when the mail went out).
    return await outbox.redrive_lost(
        conn, queue=MAIL_QUEUE, lost_before=lost_before, retention_s=86_400
    )


async def _train(conn: Any, settings: Settings, lost_before: dt.datetime) -> int:
    # Owner table: training_job. A job still `queued` whose message went out before the queue
    # was re-created gets a new one (the train function's `jobs.claim` runs a job once, so a
    # message that was not lost after all does no harm); a `running` job whose worker died
    # with its heartbeat is retried or failed.
    policy = TrainingPolicy.from_settings(settings)
    recovered = await jobs.recover_stale(conn, policy)
    return recovered + await jobs.requeue_lost(conn, sent_before=lost_before)


def redrivers() -> dict[str, Redriver]:
    """Template logical id of a queue -> its re-driver."""
    return {INGEST_QUEUE: _ingest, MAIL_QUEUE: _mail, TRAIN_QUEUE: _train}


class QueueWatch:
    """Remembers when each queue was created; reports the queues that are new to it."""

    def __init__(self, sqs: Any):
        self.sqs = sqs
        self.created: dict[str, dt.datetime] = {}

    async def changed(self, urls: dict[str, str]) -> dict[str, dt.datetime]:
        found: dict[str, dt.datetime] = {}
        for logical_id, url in urls.items():
            try:
                attributes = (
                    await asyncio.to_thread(
                        self.sqs.get_queue_attributes,
                        QueueUrl=url,
                        AttributeNames=["CreatedTimestamp"],
                    )
                )["Attributes"]
            except Exception as exc:  # the server is down or the queue not provisioned yet
                log.debug("queue %s not readable: %s", logical_id, exc)
                continue
            created = dt.datetime.fromtimestamp(float(attributes["CreatedTimestamp"]), dt.UTC)
            if self.created.get(logical_id) != created:
                self.created[logical_id] = created
                found[logical_id] = created
        return found


async def redrive(pool: Any, settings: Settings, lost: dict[str, dt.datetime]) -> dict[str, int]:
    """Runs the re-driver of each queue in `lost`, each in its own transaction."""
    done: dict[str, int] = {}
    table = redrivers()
    for logical_id, lost_before in lost.items():
        redriver = table.get(logical_id)
        if redriver is None:
            continue
        async with pool.connection() as conn, conn.transaction():
            done[logical_id] = await redriver(conn, settings, lost_before)
        if done[logical_id]:
            log.warning(
                "re-driven from Postgres",
                extra={"queue": logical_id, "count": done[logical_id],
                       "lost_before": lost_before.isoformat()},
            )  # fmt: skip
    return done
