"""Ingest sweep function: on its schedule, re-queues sources stuck in pending/processing,
queues re-embedding after an encoder bump and switches contexts that are ready for it."""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared import outbox
from shared.deps import get_deps
from shared.rag import reembed
from shared.runtime.routes import Access, Call, Route, RouteTable


async def sweep(call: Call[Any]) -> dict[str, Any]:
    deps = get_deps()
    done = await reembed.sweep(
        await deps.db.get(), version=deps.settings.rag_embedding_version,
        stuck_after_s=deps.settings.rag_stuck_after_s,
    )  # fmt: skip
    if done["redriven"] or done["reembed_queued"]:
        await outbox.flush(await deps.db.get(), deps.sqs, deps.queues)
    return done


ROUTES = RouteTable(
    "ingest_sweep",
    [
        Route("POST", "/events", sweep, "Scheduled sweep of stuck and outdated ingestions",
              access=Access.INTERNAL),
    ],
)  # fmt: skip


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    return await ROUTES.dispatch(request)
