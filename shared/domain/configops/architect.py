"""The architect step (issue 20 item 6, SPEC §8.2, §10, §11.3 "config evolution"): the model
reads recent metrics and the current global artifacts and may propose patches.

It only ever proposes. Each proposal goes through `propose` with the proposer `system_llm`,
exactly as anyone's: the `configops` rate budget (the subject "system", shared with the other
scheduled jobs), validation (an invalid patch is stored `rejected` with its problems), the
dry-run, and an admin's decision. Nothing here decides or applies, and no rule approves it:
CONFIGOPS_AUTO_APPROVE_OWN applies only to a *user* patching their own private artifact
(`propose._auto_approved` checks `proposer.kind == "user"`), and the system patches global
artifacts. A stored proposal that is somehow neither `pending` nor `rejected` is counted
(`unexpected`) and logged as an error.

The model is asked once per artifact (the global routing policy, the global chat workflow),
with a prompt cut down until it fits the model's window with room for an answer. With a 135M
model most answers are not usable proposals, so every outcome is counted: targets = asked +
too_long; asked = answered + model_failed; an answer holds no JSON (counted `unparsable`,
reason NO_JSON), or `[]`, or `items`: each unparsable (with its reason), over the run's
limit, rate-limited, refused (an error before it was stored), a duplicate (the same
operations already await a decision) or proposed; proposed =
rejected_invalid + pending + unexpected.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from shared.domain.configops import architect_metrics, architect_prompt, store
from shared.domain.configops.architect_prompt import Candidate, Target
from shared.domain.configops.models import Proposer
from shared.domain.configops.propose import Proposal, propose
from shared.domain.configops.system_review import exclusive
from shared.domain.llm.backend import Completion, GenerationParams, Message, TokenCount
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.pool import Pool
from shared.platform.errors import AppError, Conflict, RateLimited
from shared.platform.settings import Settings

log = logging.getLogger(__name__)

LOCK_KEY = "architect:running"  # one run at a time (the schedule and an admin's)
JUSTIFICATION_PREFIX = "architect (model-proposed): "
NO_JSON = "no JSON in the answer"
MIN_ANSWER_TOKENS = 48  # a prompt that leaves less room than this is cut down, or not asked
COUNT_TIMEOUT_S = 10.0
ANSWER_CHARS = 400  # of each answer, kept in the report (and the audit log) for the admin


class Completer(Protocol):
    """What the architect needs of an LLM backend (shared.domain.llm.backend.LLMBackend)."""

    async def complete(
        self, messages: Sequence[Message], params: GenerationParams, *, request_id: str | None
    ) -> Completion: ...

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount: ...


@dataclass
class ArchitectReport:
    skipped: str | None = None  # why the model was not asked (disabled, nothing to patch...)
    targets: int = 0  # artifacts the model could be asked about
    too_long: int = 0  # artifacts whose prompt did not fit the model's window: not asked
    asked: int = 0
    answered: int = 0
    model_failed: int = 0
    model_error: str | None = None
    unparsable: int = 0  # answers with no JSON, plus each unusable item
    unparsable_reasons: dict[str, int] = field(default_factory=dict)
    empty: int = 0  # answers that proposed nothing (`[]`)
    items: int = 0  # entries of the JSON the answers held
    over_limit: int = 0  # usable, but past ARCHITECT_MAX_PROPOSALS
    rate_limited: int = 0  # refused by the `configops` budget: not stored
    refused: int = 0  # another error before it was stored (say, the artifact vanished)
    duplicate: int = 0  # the same operations already await a decision: not proposed again
    proposed: int = 0  # stored through ConfigOps
    rejected_invalid: int = 0
    problem_kinds: dict[str, int] = field(default_factory=dict)
    pending: int = 0  # valid: dry-run stored, awaiting an admin's decision
    unexpected: int = 0  # stored with another status (never expected: see the docstring)
    patch_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    answers: list[str] = field(default_factory=list)  # the start of each answer, as said

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def max_run_s(settings: Settings) -> int:
    """The longest a run may take: a model call per target, and the rest (the lock's TTL; a
    run still `running` after this lost its worker)."""
    return int(settings.architect_timeout_s * len(architect_metrics.TARGETS) + 300)


async def run(
    pool: Pool,
    llm: Completer,
    *,
    redis: Any,
    settings: Settings,
    actor: Actor | None = None,
    scheduled: bool = False,
) -> ArchitectReport:
    """One architect run. `scheduled` runs honour ARCHITECT_ENABLED and skip while another run
    holds the lock; an admin's run (not scheduled) gets 409 then."""
    if scheduled and not settings.architect_enabled:
        return ArchitectReport(skipped="ARCHITECT_ENABLED is off")
    async with exclusive(redis, LOCK_KEY, max_run_s(settings)) as held:
        if not held:
            if scheduled:
                return ArchitectReport(skipped="another architect run is in progress")
            raise Conflict("an architect run is in progress", details={"reason": "busy"})
        report = await _run(pool, llm, redis=redis, settings=settings, actor=actor or Actor())
    log.info("architect run", extra={"architect": report.as_dict()})
    await audit.record(pool, "configops.architect_run", actor=actor or Actor(),
                       details=report.as_dict())  # fmt: skip
    return report


async def _run(
    pool: Pool, llm: Completer, *, redis: Any, settings: Settings, actor: Actor
) -> ArchitectReport:
    report = ArchitectReport()
    async with pool.connection() as conn:
        targets = await architect_metrics.targets(conn)
        if not targets:
            report.skipped = "no global routing policy or chat workflow to patch"
            return report
        metrics = await architect_metrics.gather(
            conn, targets, window_s=settings.architect_window_s
        )
    report.targets = len(targets)
    candidates: list[Candidate] = []
    reasons: Counter[str] = Counter()
    for target in targets:
        shown = architect_metrics.for_target(metrics, target)
        fitted = await _fit(llm, shown, target, settings)
        if fitted is None:
            report.too_long += 1
            continue
        text = await _ask(llm, *fitted, report=report, timeout_s=settings.architect_timeout_s)
        if text is None:
            continue
        reading = architect_prompt.read(text, [target])
        if not reading.found:
            reasons[NO_JSON] += 1
            log.info("architect: unparsable answer about %s: %r", target.name, text[:300])
        elif not reading.items:
            report.empty += 1
        report.items += reading.items
        reasons.update(reading.unusable)
        candidates += reading.candidates
    report.unparsable = sum(reasons.values())
    report.unparsable_reasons = dict(reasons)
    limit = settings.architect_max_proposals
    report.over_limit = max(0, len(candidates) - limit)
    await _submit(pool, candidates[:limit], report, redis=redis, settings=settings,
                  actor=actor)  # fmt: skip
    return report


async def _fit(
    llm: Completer, metrics: dict[str, Any], target: Target, settings: Settings
) -> tuple[list[Message], int] | None:
    """The prompt about `target`, cut down (fewer rows of metrics) until it leaves room for an
    answer in the model's window, and the answer's token budget; None: it never fits."""
    for rows in architect_prompt.METRIC_ROWS:
        messages = architect_prompt.build(
            architect_prompt.brief(metrics, rows), target,
            max_proposals=settings.architect_max_proposals,
        )  # fmt: skip
        try:
            counted = await asyncio.wait_for(llm.count_tokens(messages), COUNT_TIMEOUT_S)
        except Exception:  # cannot tell: ask anyway (a prompt too long fails as a model error)
            return messages, settings.architect_max_tokens
        room = counted.context_window - counted.count - 1
        if room >= MIN_ANSWER_TOKENS:
            return messages, min(settings.architect_max_tokens, room)
    return None


async def _ask(
    llm: Completer, messages: list[Message], max_tokens: int, *, report: ArchitectReport,
    timeout_s: float,
) -> str | None:  # fmt: skip
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
    report.asked += 1
    try:
        done = await asyncio.wait_for(
            llm.complete(messages, params, request_id=f"architect-{uuid.uuid4().hex[:12]}"),
            timeout_s,
        )
    except Exception as exc:  # no answer in time, the model down: counted, never raised
        report.model_failed += 1
        report.model_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("architect: the model gave no answer: %s", report.model_error)
        return None
    report.answered += 1
    report.prompt_tokens += done.usage.prompt_tokens
    report.completion_tokens += done.usage.completion_tokens
    report.answers.append(done.text[:ANSWER_CHARS])
    return done.text


async def _submit(
    pool: Pool, candidates: list[Candidate], report: ArchitectReport, *, redis: Any,
    settings: Settings, actor: Actor,
) -> None:  # fmt: skip
    kinds: Counter[str] = Counter()
    for index, candidate in enumerate(candidates):
        proposal = Proposal(
            patch=candidate.patch, artifact_id=candidate.target.artifact_id,
            base_version=candidate.target.version,
            justification=JUSTIFICATION_PREFIX + (candidate.justification or "(none given)"),
        )  # fmt: skip
        try:
            async with pool.connection() as conn:
                same = await store.pending_same(conn, candidate.target.artifact_id, candidate.patch)
                if same is not None:
                    report.duplicate += 1
                    continue
                patch = await propose(conn, proposal, proposer=Proposer.system(), actor=actor,
                                      redis=redis, settings=settings)  # fmt: skip
        except RateLimited:
            report.rate_limited += len(candidates) - index  # the rest would be refused too
            break
        except AppError as exc:
            report.refused += 1
            log.warning("architect: proposal refused: %s", exc.message)
            continue
        report.proposed += 1
        report.patch_ids.append(patch.id)
        if patch.status == "rejected":
            report.rejected_invalid += 1
            problems = (patch.validation or {}).get("problems") or []
            kinds.update(architect_prompt.problem_kind(p) for p in problems)
        elif patch.status == "pending":
            report.pending += 1
        else:
            report.unexpected += 1
            log.error("architect: patch %s is %s after proposal", patch.id, patch.status)
    report.problem_kinds = dict(kinds)
