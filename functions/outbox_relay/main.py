"""Outbox relay function: on its schedule, sends committed outbox rows to their queues."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.platform.outbox import relay_once
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


class RelayResult(BaseModel):
    sent: int


async def sweep(call: Call[Any], *, services: Services) -> RelayResult:
    sent = await relay_once(services.db, services.sqs, await services.queues.all_urls())
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
