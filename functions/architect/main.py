"""Architect function (issue 20 item 6): on its schedule (every 6 hours) the model reads
recent metrics and the global routing policy and chat workflow (one call each) and may propose
patches,
which ConfigOps validates, dry-runs and leaves to an admin (shared.domain.configops.architect).
An admin may run it now: the answer is the run's counts, with the ids of the stored patches
(202: what it proposed awaits a decision)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.domain.configops import architect
from shared.platform.auth.perimeter import client_of, perimeter
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


class ArchitectRun(BaseModel):
    """What one run did; see shared.domain.configops.architect for how the counts add up."""

    skipped: str | None
    targets: int
    too_long: int
    asked: int
    answered: int
    model_failed: int
    model_error: str | None
    unparsable: int
    unparsable_reasons: dict[str, int]
    empty: int
    items: int
    over_limit: int
    rate_limited: int
    refused: int
    proposed: int
    rejected_invalid: int
    problem_kinds: dict[str, int]
    pending: int
    unexpected: int
    patch_ids: list[int]
    prompt_tokens: int
    completion_tokens: int
    answers: list[str]


async def scheduled(call: Call[Any], *, services: Services) -> ArchitectRun:
    report = await architect.run(
        services.db, services.llm, redis=services.redis, settings=services.settings,
        scheduled=True,
    )  # fmt: skip
    return ArchitectRun.model_validate(report.as_dict())


async def run_now(call: Call[Any], *, services: Services) -> ArchitectRun:
    report = await architect.run(
        services.db, services.llm, redis=services.redis, settings=services.settings,
        actor=client_of(call.request, call.user.user_id),
    )  # fmt: skip
    return ArchitectRun.model_validate(report.as_dict())


ROUTES = RouteTable(
    "architect",
    [
        Route("POST", "/events", scheduled,
              "The schedule: one architect run (skipped when ARCHITECT_ENABLED is off)",
              access=Access.INTERNAL, response_model=ArchitectRun),
        Route("POST", "/v1/admin/architect/run", run_now,
              "Run the architect now: the model proposes patches, validated and left pending",
              access=Access.ADMIN, response_model=ArchitectRun, status=202),
    ],
    **perimeter(),
)  # fmt: skip
