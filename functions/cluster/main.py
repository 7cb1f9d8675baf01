"""Cluster function (SPEC §7.1-7.2): the ClusterQueue consumer that clusters one scope's
preference events (a user's, or the consenting users' globally) and labels the clusters;
on its hourly schedule it queues the runs that are due; an admin may queue runs on demand.
Users read their own clusters; admins every cluster."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from functions.cluster.schemas import (
    AdminClusterPage,
    AdminClusterQuery,
    ClusterPage,
    ClusterQuery,
    Events,
    RunIn,
    RunMessage,
    RunQueued,
)
from shared.domain.clusters import run, store
from shared.platform import outbox
from shared.platform.auth.perimeter import perimeter
from shared.platform.runtime.batch import SqsBatch, SqsRecord, process_batch
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger(__name__)


async def handle(record: SqsRecord, *, services: Services) -> None:
    message = RunMessage.model_validate(record.payload())
    report = await run.run(services.db, services.llm, message.user_id)
    log.info("clustered", extra=report.as_dict())


async def _queue(services: Services, user_ids: list[str | None], key: str | None) -> int:
    async with services.db.connection() as conn, conn.transaction():
        queued = await run.enqueue(conn, user_ids, key=key)
    if queued:
        await outbox.flush(services.db, services.sqs, services.queues)
    return queued


async def _due(services: Services) -> list[str | None]:
    async with services.db.connection() as conn:
        users: list[str | None] = list(await run.due_users(conn))
    return [*users, None]  # the global run too: consent may have changed without new events


async def events(call: Call[Events], *, services: Services) -> Any:
    """ClusterQueue batches (each message one run), or the schedule (queue the due runs, once
    per hour however often it fires)."""
    if call.body.Records is not None:
        batch = SqsBatch(Records=call.body.Records)
        return await process_batch(batch, lambda r: handle(r, services=services), services)
    hour = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H")
    return {"queued": await _queue(services, await _due(services), hour)}


async def run_now(call: Call[RunIn], *, services: Services) -> RunQueued:
    body = call.body
    if body.scope == "user":
        targets: list[str | None] = [body.user_id]
    elif body.scope == "global":
        targets = [None]
    else:
        targets = await _due(services)
    return RunQueued(queued=await _queue(services, targets, None))


async def admin_list(call: Call[AdminClusterQuery], *, services: Services) -> AdminClusterPage:
    q = call.body
    async with services.db.connection() as conn:
        rows, cursor = await store.page(
            conn, user_id=q.user_id, scope=q.scope, cursor=q.cursor, limit=q.limit
        )
    return AdminClusterPage.model_validate({"items": rows, "next_cursor": cursor})


async def my_clusters(call: Call[ClusterQuery], *, services: Services) -> ClusterPage:
    q = call.body
    async with services.db.connection() as conn:
        rows, cursor = await store.page(
            conn, user_id=call.user.user_id, scope="user", cursor=q.cursor, limit=q.limit
        )
    return ClusterPage.model_validate({"items": rows, "next_cursor": cursor})


ROUTES = RouteTable(
    "cluster",
    [
        Route("POST", "/events", events,
              "ClusterQueue batches (one run each) and the hourly schedule that queues them",
              access=Access.INTERNAL, request_model=Events),
        Route("POST", "/v1/admin/clusters/run", run_now,
              "Queue cluster runs now: one user's, the global one, or all that are due",
              access=Access.ADMIN, request_model=RunIn, response_model=RunQueued, status=202),
        Route("GET", "/v1/admin/clusters", admin_list,
              "Every live cluster with its label, keywords, size and scope",
              access=Access.ADMIN, request_model=AdminClusterQuery,
              response_model=AdminClusterPage),
        Route("GET", "/v1/clusters", my_clusters,
              "The caller's own clusters of their feedback", access=Access.USER,
              request_model=ClusterQuery, response_model=ClusterPage),
    ],
    **perimeter(),
)  # fmt: skip
