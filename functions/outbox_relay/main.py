"""Outbox relay function: on its schedule, sends committed outbox rows to their queues."""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from shared.deps import get_deps
from shared.outbox import relay_once
from shared.runtime.routes import Access, Call, Route, RouteTable


class RelayResult(BaseModel):
    sent: int


async def sweep(call: Call[Any]) -> RelayResult:
    deps = get_deps()
    sent = await relay_once(await deps.db.get(), deps.sqs, await deps.queues.all_urls())
    return RelayResult(sent=sent)


ROUTES = RouteTable(
    "outbox_relay",
    [
        Route(
            "POST",
            "/events",
            sweep,
            "Scheduled sweep of the outbox",
            access=Access.INTERNAL,
            response_model=RelayResult,
        ),
    ],
)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    return await ROUTES.dispatch(request)
