"""Outbox relay function: on its schedule, sends committed outbox rows to their queues. In
Lambda it also writes the product's gauges (training failures, ingestion lag, the outbox) as
one EMF line each minute, for the alarms of template.yaml (locally the dispatcher samples them
into Prometheus)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from shared.platform import emf
from shared.platform.ops_metrics import emit_emf, sample
from shared.platform.outbox import relay_once
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


class RelayResult(BaseModel):
    sent: int


async def sweep(call: Call[Any], *, services: Services) -> RelayResult:
    sent = await relay_once(services.db, services.sqs, await services.queues.all_urls())
    if emf.in_lambda():
        try:
            emit_emf(await sample(services.db))
        except Exception as exc:  # the relay's work is done; a missed sample is one gap
            logging.getLogger(__name__).warning("ops metrics not sampled: %s", exc)
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
