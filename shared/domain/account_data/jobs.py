"""The export job (one ExportQueue message) and the hourly upkeep: expired zips removed,
stalled purges queued again."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared.domain.account_data import exports, purge
from shared.domain.account_data.mail import queue_export_ready
from shared.domain.account_data.writer import write_export
from shared.platform import outbox
from shared.platform.clients import Clients
from shared.platform.runtime.batch import is_permanent

log = logging.getLogger(__name__)

EXPORT_QUEUE = "ExportQueue"
# A `running` export older than this lost its worker (the function's timeout is 900 s).
STALE_RUN_S = 1800
EXPIRE_BATCH = 100


async def queue_export(clients: Clients, user_id: str) -> exports.Export:
    """A new export row and its message, in one transaction (409 while one is on its way)."""
    async with clients.db.connection() as conn, conn.transaction():
        export = await exports.create(conn, user_id)
        await outbox.enqueue(conn, queue=EXPORT_QUEUE, body={"export_id": export.id},
                             dedup_key=f"export:{export.id}")  # fmt: skip
    await outbox.flush(clients.db, clients.sqs, clients.queues)
    return export


async def run_export(clients: Clients, export_id: str, *, final: bool) -> exports.Export | None:
    """Writes the export's zip and marks it ready (the mail queued with it); None when a
    redelivered message finds nothing to do. A failure is recorded, then raised again for
    the queue: `failed` on the last try (or one that cannot pass), else `queued` again."""
    async with clients.db.connection() as conn:
        export = await exports.claim(conn, export_id, stale_after_s=STALE_RUN_S)
    if export is None:
        log.info("export %s is not queued; nothing to do", export_id)
        return None
    key = exports.object_key(export.user_id, export.id)
    settings = clients.settings
    try:
        async with clients.db.connection() as conn:
            written = await write_export(
                conn, clients.s3, clients.bucket(), user_id=export.user_id, export_id=export.id,
                key=key, max_bytes=settings.export_max_bytes,
            )  # fmt: skip
        async with clients.db.connection() as conn, conn.transaction():
            ready = await exports.mark_ready(conn, export.id, key=key,
                                             size_bytes=written.size_bytes,
                                             ttl_s=settings.export_ttl_s)  # fmt: skip
            await queue_export_ready(conn, export.user_id, export.id)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):  # no zip without a ready row
            await asyncio.to_thread(clients.s3.delete_object, Bucket=clients.bucket(), Key=key)
        with contextlib.suppress(Exception):  # the database may be what failed
            async with clients.db.connection() as conn:
                if final or is_permanent(exc):
                    await exports.mark_failed(conn, export.id, reason)
                else:
                    await exports.requeue(conn, export.id, reason)
        raise
    await outbox.flush(clients.db, clients.sqs, clients.queues)
    return ready


async def expire_exports(clients: Clients) -> int:
    """Zips past their expiry are deleted and their exports marked expired."""
    expired = 0
    while True:
        async with clients.db.connection() as conn:
            due = await exports.due_to_expire(conn, limit=EXPIRE_BATCH)
        for export_id, key in due:
            if key:
                await asyncio.to_thread(clients.s3.delete_object, Bucket=clients.bucket(), Key=key)
            async with clients.db.connection() as conn:
                await exports.mark_expired(conn, export_id)
            expired += 1
        if len(due) < EXPIRE_BATCH:
            return expired


async def resume_purges(clients: Clients) -> int:
    async with clients.db.connection() as conn, conn.transaction():
        queued = await purge.stalled(
            conn, older_than_s=clients.settings.account_purge_resume_after_s
        )
    if queued:
        await outbox.flush(clients.db, clients.sqs, clients.queues)
    return len(queued)
