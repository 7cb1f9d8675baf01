"""How the system's reviews of its adapters (skills.py, pruning.py) put their proposals to
ConfigOps: one at a time through `propose` as `system_llm`, exactly as anyone's (the
`configops` rate budget of the subject "system", validation, the dry-run, an admin's
decision), each outcome counted. The first 429 ends the batch: the rest would be refused too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from shared.domain.configops.models import Proposer
from shared.domain.configops.propose import Proposal, propose
from shared.platform.audit import Actor
from shared.platform.db.pool import Pool
from shared.platform.errors import AppError, RateLimited
from shared.platform.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of a review's proposals: proposed = pending + rejected_invalid + unexpected."""

    proposed: int = 0  # stored through ConfigOps
    pending: int = 0  # valid: awaiting an admin's decision
    rejected_invalid: int = 0  # stored `rejected` by validation, with its problems
    unexpected: int = 0  # stored with another status (never expected: no rule approves them)
    rate_limited: int = 0  # refused by the `configops` budget: not stored
    refused: int = 0  # another error before it was stored (say, the adapter vanished)
    patch_ids: list[int] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # of the invalid ones


async def submit(
    pool: Pool,
    proposals: Sequence[Proposal],
    outcome: Outcome,
    *,
    redis: Any,
    settings: Settings,
    actor: Actor,
) -> None:
    for index, proposal in enumerate(proposals):
        try:
            async with pool.connection() as conn:
                patch = await propose(conn, proposal, proposer=Proposer.system(), actor=actor,
                                      redis=redis, settings=settings)  # fmt: skip
        except RateLimited:
            outcome.rate_limited = len(proposals) - index
            log.warning("system review: the configops budget is spent; %d proposals wait",
                        outcome.rate_limited)  # fmt: skip
            break
        except AppError as exc:
            outcome.refused += 1
            log.warning("system review: proposal refused: %s", exc.message)
            continue
        outcome.proposed += 1
        outcome.patch_ids.append(patch.id)
        if patch.status == "pending":
            outcome.pending += 1
        elif patch.status == "rejected":
            outcome.rejected_invalid += 1
            found = (patch.validation or {}).get("problems") or []
            outcome.problems.append({"patch_id": patch.id, "problems": found[:3]})
        else:
            outcome.unexpected += 1
            log.error("system review: patch %s is %s after proposal", patch.id, patch.status)


@asynccontextmanager
async def exclusive(redis: Any, key: str, ttl_s: int) -> AsyncIterator[bool]:
    """Whether this review holds `key` (a Redis lock, released on the way out); False: another
    review holds it, and this one should not run."""
    token = uuid.uuid4().hex
    if not await redis.set(key, token, nx=True, ex=ttl_s):
        yield False
        return
    try:
        yield True
    finally:
        if await redis.get(key) in (token, token.encode()):
            await redis.delete(key)
