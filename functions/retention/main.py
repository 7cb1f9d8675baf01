"""Retention function: on its daily schedule, deletes what is kept no longer (sent outbox rows
past OUTBOX_RETENTION_DAYS) and the object store's scratch past SCRATCH_TTL_S (uploads never
completed, multipart uploads never finished, voice and file objects no row names). Each part
is idempotent and batched; the counts are logged and returned."""

from __future__ import annotations

import logging
from typing import Any

from functions.retention import outbox, scratch
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger("retention")


async def run(services: Services) -> dict[str, int]:
    settings, pool, s3, bucket = services.settings, services.db, services.s3, services.bucket()
    batch, max_batches, ttl = (
        settings.retention_batch,
        settings.retention_max_batches,
        settings.scratch_ttl_s,
    )
    counts = {
        "outbox_deleted": await outbox.prune_sent(
            pool, older_than_days=settings.outbox_retention_days, batch=batch,
            max_batches=max_batches,
        ),
        "uploads_abandoned": await scratch.abandoned_uploads(
            pool, s3, bucket, older_than_s=ttl, batch=batch, max_batches=max_batches
        ),
        "multipart_aborted": await scratch.stale_multipart_uploads(
            s3, bucket, older_than_s=ttl, max_batches=max_batches
        ),
        "stray_objects_deleted": await scratch.stray_objects(
            pool, s3, bucket, older_than_s=ttl, max_batches=max_batches
        ),
    }  # fmt: skip
    log.info("retention run", extra=counts)
    return counts


async def sweep(call: Call[Any], *, services: Services) -> dict[str, int]:
    return await run(services)


ROUTES = RouteTable(
    "retention",
    [
        Route("POST", "/events", sweep,
              "Scheduled: sent outbox rows and the object store's scratch past their time"
              " are deleted", access=Access.INTERNAL),
    ],
)  # fmt: skip
