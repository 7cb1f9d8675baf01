"""Architect function (issue 20 item 6): the model reads recent metrics and the global routing
policy and chat workflow (one call each) and may propose patches, which ConfigOps validates,
dry-runs and leaves to an admin (shared.domain.configops.architect).

Every run is an `architect_run` row (shared.domain.configops.architect_runs). The schedule
(every 6 hours) runs inline. An admin's "run now" is queued: the route answers 202 with the
run at once (a model call per artifact outlasts API Gateway's 29 seconds), ArchitectQueue
brings it here, and the console follows `GET /v1/admin/architect/runs/{id}` to its report."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from functions.architect.schemas import (
    ArchitectRunOut,
    Events,
    RunMessage,
    RunPage,
    RunQuery,
    RunRequested,
)
from shared.domain.configops import architect, architect_runs
from shared.platform import audit, outbox
from shared.platform.audit import Actor
from shared.platform.auth.perimeter import client_of, perimeter
from shared.platform.errors import Conflict, NotFound
from shared.platform.runtime.batch import SqsBatch, SqsRecord, last_receive, process_batch
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger(__name__)


def _out(run: architect_runs.ArchitectRun) -> ArchitectRunOut:
    return ArchitectRunOut.model_validate(run.__dict__)


async def _carry_out(
    services: Services, run_id: int, actor: Actor, *, scheduled: bool, final: bool = True
) -> None:
    """Runs the architect for a `running` row and records how it ended. An error is raised
    again after it is recorded: `failed` when this was the `final` try, else `queued` again for
    the message's next delivery."""
    try:
        report = await architect.run(
            services.db, services.llm, redis=services.redis, settings=services.settings,
            actor=actor, scheduled=scheduled,
        )  # fmt: skip
    except Conflict:  # a run started outside this table (a direct call) holds the lock
        report = architect.ArchitectReport(skipped="another architect run is in progress")
    except Exception as exc:
        with contextlib.suppress(Exception):  # the database may be what failed
            async with services.db.connection() as conn:
                if final:
                    await architect_runs.finish(conn, run_id, report=None,
                                                error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                else:
                    await architect_runs.requeue(conn, run_id)
        raise
    async with services.db.connection() as conn:
        await architect_runs.finish(conn, run_id, report=report.as_dict())


async def handle(record: SqsRecord, *, services: Services) -> None:
    """One queued run; a redelivered message finds it no longer queued and does nothing
    (unless its worker died mid-run: then it runs again)."""
    message = RunMessage.model_validate(record.payload())
    async with services.db.connection() as conn:
        run = await architect_runs.claim(
            conn, message.run_id, stale_after_s=architect.max_run_s(services.settings)
        )
    if run is None:
        log.info("architect run %s is not queued; nothing to do", message.run_id)
        return
    await _carry_out(services, run.id, Actor(user_id=run.requested_by), scheduled=False,
                     final=last_receive(services, record))  # fmt: skip


async def events(call: Call[Events], *, services: Services) -> Any:
    """ArchitectQueue batches (an admin's queued runs), or the schedule: one run now, skipped
    while another is queued or running."""
    if call.body.Records is not None:
        batch = SqsBatch(Records=call.body.Records)
        return await process_batch(batch, lambda r: handle(r, services=services), services)
    async with services.db.connection() as conn:
        run = await architect_runs.start_scheduled(
            conn, stale_after_s=architect.max_run_s(services.settings)
        )
    if run is None:
        return {"skipped": "another architect run is queued or running"}
    await _carry_out(services, run.id, Actor(), scheduled=True)
    async with services.db.connection() as conn:
        return _out(await architect_runs.get(conn, run.id)).model_dump(mode="json")


async def run_now(call: Call[Any], *, services: Services) -> RunRequested:
    actor = client_of(call.request, call.user.user_id)
    async with services.db.connection() as conn, conn.transaction():
        run, queued = await architect_runs.request(
            conn, requested_by=call.user.user_id,
            stale_after_s=architect.max_run_s(services.settings),
        )  # fmt: skip
        if queued:
            await audit.record(conn, "configops.architect_requested", actor=actor,
                               details={"run_id": run.id})  # fmt: skip
    if queued:
        await outbox.flush(services.db, services.sqs, services.queues)
    return RunRequested(run=_out(run), queued=queued)


async def list_runs(call: Call[RunQuery], *, services: Services) -> RunPage:
    async with services.db.connection() as conn:
        runs, before = await architect_runs.recent(
            conn, before=call.body.before, limit=call.body.limit
        )
    return RunPage(items=[_out(r) for r in runs], next_before=before)


async def get_run(call: Call[Any], *, services: Services) -> ArchitectRunOut:
    raw = call.path_params["id"]
    if not raw.isdigit() or not 1 <= int(raw) <= 2**63 - 1:
        raise NotFound("no such architect run")
    async with services.db.connection() as conn:
        return _out(await architect_runs.get(conn, int(raw)))


ROUTES = RouteTable(
    "architect",
    [
        Route("POST", "/events", events,
              "ArchitectQueue batches (an admin's queued runs) and the 6-hourly schedule",
              access=Access.INTERNAL, request_model=Events),
        Route("POST", "/v1/admin/architect/run", run_now,
              "Queue an architect run now (or answer the one queued or running); follow it at"
              " /v1/admin/architect/runs/{id}",
              access=Access.ADMIN, response_model=RunRequested, status=202),
        Route("GET", "/v1/admin/architect/runs", list_runs,
              "The architect's runs, newest first, with their reports",
              access=Access.ADMIN, request_model=RunQuery, response_model=RunPage),
        Route("GET", "/v1/admin/architect/runs/{id}", get_run,
              "One architect run: its status and, once ended, its report or error",
              access=Access.ADMIN, response_model=ArchitectRunOut),
    ],
    **perimeter(),
)  # fmt: skip
