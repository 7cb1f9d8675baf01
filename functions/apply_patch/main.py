"""Apply-patch queue function (DESIGN.md §4 flow 5): one message `{"patch_id"}` per approved
ConfigOps patch, sent through the outbox when an admin (or the auto-approve rule) asked for
it. The patch row holds everything else; shared.domain.configops.apply does the work, and
what it queued in the same transaction (a skill adapter's training job) leaves at once after.

A message is acknowledged once the patch has an outcome in its row (`applied`, or `failed`
with the reason, the artifact untouched); a redelivery finds it so and does nothing. Only an
unexpected error (the database down) fails the message, to be retried with back-off and moved
to the DLQ after the queue's maxReceiveCount; on that last receive the patch is marked `failed`
(when the database lets us) so it never waits on a message that will not come."""

from __future__ import annotations

import contextlib
import logging

from pydantic import BaseModel, Field

from shared.domain.configops.apply import apply, give_up
from shared.platform import outbox
from shared.platform.runtime.batch import SqsRecord, last_receive, queue_function
from shared.services import Services

log = logging.getLogger(__name__)


class ApplyRequest(BaseModel):
    patch_id: int = Field(ge=1, le=2**63 - 1)


async def handle(record: SqsRecord, *, services: Services) -> None:
    request = ApplyRequest.model_validate(record.payload())
    try:
        async with services.db.connection() as conn:
            patch = await apply(conn, request.patch_id, settings=services.settings)
    except Exception as exc:
        if last_receive(services, record):  # to the DLQ next: say so on the patch
            with contextlib.suppress(Exception):
                async with services.db.connection() as conn:
                    await give_up(conn, request.patch_id, f"{type(exc).__name__}: {exc}")
        raise
    if patch is not None and patch.status == "applied":  # a skill's training job, say
        await outbox.flush(services.db, services.sqs, services.queues)
    log.info("apply-patch message done", extra={
        "patch_id": request.patch_id, "status": patch.status if patch else "gone",
        "version": patch.applied_version if patch else None,
    })  # fmt: skip


ROUTES = queue_function("apply_patch", handle, "SQS batch of approved ConfigOps patches")
