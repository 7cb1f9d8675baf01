"""Ingest sweep function: on its schedule, re-queues sources stuck in pending/processing,
queues re-embedding after an encoder bump and switches contexts that are ready for it."""

from __future__ import annotations

from typing import Any

from shared.domain.rag import reembed
from shared.platform import outbox
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


async def sweep(call: Call[Any], *, services: Services) -> dict[str, Any]:
    done = await reembed.sweep(
        services.db, version=services.settings.rag_embedding_version,
        stuck_after_s=services.settings.rag_stuck_after_s,
    )  # fmt: skip
    if done["redriven"] or done["reembed_queued"]:
        await outbox.flush(services.db, services.sqs, services.queues)
    return done


ROUTES = RouteTable(
    "ingest_sweep",
    [
        Route("POST", "/events", sweep, "Scheduled sweep of stuck and outdated ingestions",
              access=Access.INTERNAL),
    ],
)  # fmt: skip
