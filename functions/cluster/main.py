"""Cluster function (SPEC §7.1-7.4): the ClusterQueue consumer that clusters one scope's
preference events (a user's, or the consenting users' globally), labels the clusters and
proposes a skill adapter for each that qualifies; on its hourly schedule it queues the runs
that are due and reviews the skill adapters (disable the idle ones, merge near-duplicates);
an admin may queue runs, or review the skills, on demand. Every skill change is a ConfigOps
patch proposed by the system, for an admin to decide. Users read their own clusters; admins
every cluster."""

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
    SkillReviewOut,
)
from shared.domain.clusters import run, store
from shared.domain.configops import pruning, skills
from shared.domain.preferences import skill_jobs
from shared.domain.preferences.schedule import TrainingPolicy
from shared.platform import outbox
from shared.platform.audit import Actor
from shared.platform.auth.perimeter import client_of, perimeter
from shared.platform.runtime.batch import SqsBatch, SqsRecord, process_batch
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger(__name__)


async def handle(record: SqsRecord, *, services: Services) -> None:
    message = RunMessage.model_validate(record.payload())
    report = await run.run(services.db, services.llm, message.user_id)
    log.info("clustered", extra=report.as_dict())
    try:  # the clusters are committed: a failed review must not run them again
        await skills.review(services.db, scope=message.user_id, redis=services.redis,
                            settings=services.settings)  # fmt: skip
        await _retrain_skills(services, message.user_id)
    except Exception:
        log.exception("skill review after the cluster run failed")


async def _retrain_skills(services: Services, owner_user_id: str | None) -> None:
    """The scope's skills whose clusters gained enough events since they trained get a job
    (the events are mapped to clusters by the run just made)."""
    settings = services.settings
    async with services.db.connection() as conn, conn.transaction():
        queued = await skill_jobs.retrain_due(
            conn, owner_user_id=owner_user_id, threshold=settings.skill_retrain_events,
            policy=TrainingPolicy.from_settings(settings), step_budget=settings.skill_step_budget,
        )  # fmt: skip
    if queued:
        log.info("skills queued for retraining", extra={"jobs": queued})
        await outbox.flush(services.db, services.sqs, services.queues)


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
    queued = await _queue(services, await _due(services), hour)
    try:  # the runs are queued: a failed review waits for the next hour
        review = await pruning.review(services.db, redis=services.redis,
                                      settings=services.settings, scheduled=True)  # fmt: skip
        reviewed: dict[str, Any] = {"proposed": review.proposed, "skipped": review.skipped}
    except Exception:
        log.exception("the scheduled skill review failed")
        reviewed = {"failed": True}
    return {"queued": queued, "skill_review": reviewed}


async def run_now(call: Call[RunIn], *, services: Services) -> RunQueued:
    body = call.body
    if body.scope == "user":
        targets: list[str | None] = [body.user_id]
    elif body.scope == "global":
        targets = [None]
    else:
        targets = await _due(services)
    return RunQueued(queued=await _queue(services, targets, None))


async def review_skills(call: Call[Any], *, services: Services) -> SkillReviewOut:
    """Proposes skills for every live scope's qualifying clusters, then the disable and merge
    proposals, now (what the cluster runs and the schedule do)."""
    actor: Actor = client_of(call.request, call.user.user_id)
    redis, settings = services.redis, services.settings
    made = await skills.review(services.db, scope=skills.ALL_SCOPES, redis=redis,
                               settings=settings, actor=actor)  # fmt: skip
    pruned = await pruning.review(services.db, redis=redis, settings=settings, actor=actor)
    return SkillReviewOut.model_validate({"skills": made.as_dict(), "pruning": pruned.as_dict()})


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
        Route("POST", "/v1/admin/skills/review", review_skills,
              "Review the skill adapters now: propose skills for qualifying clusters, and "
              "disabling or merging skills, as ConfigOps patches for an admin to decide",
              access=Access.ADMIN, response_model=SkillReviewOut),
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
