"""When a user's feedback becomes a training job (SPEC §5.4 scheduling).

`maybe_schedule` runs in the transaction that wrote the feedback (or ended a job, or resumed
learning), under the user's personalization lock, so concurrent feedback of one user is
decided one at a time. It queues a job when the user's *new trainable* events (not taken by a
job, not refused by the content check, not from before a reset) reach the threshold:
one `training_job` row (status `queued`, `preference_event_ids`, `meta` with attempt, priority
and step budget) and one TrainQueue message `{"job_id": ...}` through the outbox, both in that
transaction. Otherwise it says why not:
- `paused`: learning is paused; nothing is queued (resuming checks again at once);
- `joined`: a job is queued and has not started: the new events join it (it reads its events
  when it starts);
- `running`: a job is running; its end checks again (`jobs.succeed`);
- `below_threshold`.
The cooldown does not refuse: a job due inside it is queued now with its message held in the
outbox until the cooldown ends (`not_before`), so no one has to come back for it.

Everything here is about the user's *persona* jobs (`kind = 'persona'`): a skill adapter's job
(skill_jobs.py, queued by ConfigOps) neither blocks nor joins nor cools down a persona's.

Fair sharing and priority. SQS has no priorities, so: a user holds at most one queued or
running persona job (the partial unique index), i.e. one place in the queue, whatever their
volume; the cooldown spaces a user's jobs; and while other users' jobs (or skill jobs) are
active, a job of a lower tier waits `TRAINING_TIER_DELAY_S[tier]` before its message becomes
visible (admins, then paid tiers, go first). `meta.priority` (0 best) records the rank for a
train function that picks among several queued jobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg.types.json import Jsonb

from shared.domain.preferences.persona import Personalization
from shared.platform import outbox
from shared.platform.db.pool import Connection
from shared.platform.settings import Settings

TRAIN_QUEUE = "TrainQueue"
Outcome = Literal["queued", "joined", "running", "below_threshold", "paused"]


@dataclass(frozen=True)
class TrainingPolicy:
    threshold: int = 20
    cooldown_s: int = 3600
    step_budget: int = 64
    max_events: int = 500
    max_attempts: int = 3
    retry_base_s: float = 60.0
    stale_after_s: int = 7200
    tier_delay_s: Mapping[str, int] = field(
        default_factory=lambda: {"admin": 0, "team": 0, "pro": 0, "free": 300}
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingPolicy:
        return cls(
            threshold=settings.training_threshold_events,
            cooldown_s=settings.training_cooldown_s,
            step_budget=settings.training_step_budget,
            max_events=settings.training_max_events,
            max_attempts=settings.training_max_attempts,
            retry_base_s=settings.training_retry_base_s,
            stale_after_s=settings.training_stale_after_s,
            tier_delay_s=dict(settings.training_tier_delay_s),
        )

    def tier_of(self, role: str, plan_tier: str) -> str:
        return "admin" if role == "admin" else plan_tier

    def delay_of(self, tier: str) -> int:
        return int(self.tier_delay_s.get(tier, self.tier_delay_s.get("free", 0)))

    def priority_of(self, tier: str) -> int:
        """0 for admins, 1 for tiers without a delay, 2 for the others."""
        return 0 if tier == "admin" else (1 if self.delay_of(tier) == 0 else 2)

    def retry_delay_s(self, attempt: int) -> float:
        """Back-off before attempt `attempt + 1`, after `attempt` failed."""
        return self.retry_base_s * 2 ** max(0, attempt - 1)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    job_id: str | None = None
    new_events: int = 0
    threshold: int = 0
    not_before: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "job_id": self.job_id, "new_events": self.new_events,
            "threshold": self.threshold, "not_before": self.not_before,
        }  # fmt: skip


def dedup_key(job_id: str, attempt: int) -> str:
    return f"train:{job_id}:{attempt}"


def message(job_id: str) -> dict[str, Any]:
    """The TrainQueue message: the job's id; everything else is in the job row."""
    return {"job_id": job_id}


# Trainable: not refused by the content check, and given (or replaced) after the last reset.
_TRAINABLE = """
SELECT e.id FROM preference_event e
 WHERE e.user_id = %(user)s AND e.filtered_reason IS NULL
   AND (%(reset)s::timestamptz IS NULL OR e.updated_at > %(reset)s::timestamptz)
"""


async def trainable_ids(conn: Connection, state: Personalization, limit: int) -> list[int]:
    """The user's trainable events, newest first: what a job trains on."""
    cursor = await conn.execute(
        _TRAINABLE + " ORDER BY e.updated_at DESC, e.id DESC LIMIT %(n)s",
        {"user": state.user_id, "reset": state.reset_at, "n": limit},
    )
    return [row[0] for row in await cursor.fetchall()]


async def new_ids(conn: Connection, state: Personalization) -> list[int]:
    """The user's trainable events no job has taken yet."""
    cursor = await conn.execute(
        _TRAINABLE + " AND e.job_id IS NULL", {"user": state.user_id, "reset": state.reset_at}
    )
    return [row[0] for row in await cursor.fetchall()]


async def active_job(conn: Connection, user_id: str) -> tuple[str, str] | None:
    """(id, status) of the user's queued or running persona job, locked."""
    row = await (
        await conn.execute(
            "SELECT id::text, status FROM training_job WHERE user_id = %s AND kind = 'persona'"
            " AND status IN ('queued', 'running') FOR UPDATE",
            (user_id,),
        )
    ).fetchone()
    return (row[0], row[1]) if row else None


async def cooldown_until(
    conn: Connection, user_id: str, cooldown_s: int
) -> dt.datetime | None:  # fmt: skip
    """When the cooldown after the user's last persona job that ran ends (None: no job ran
    yet)."""
    row = await (
        await conn.execute(
            "SELECT max(coalesce(finished_at, started_at)) + make_interval(secs => %s)"
            " FROM training_job WHERE user_id = %s AND kind = 'persona'"
            " AND started_at IS NOT NULL",
            (cooldown_s, user_id),
        )
    ).fetchone()
    return row[0] if row else None


async def maybe_schedule(
    conn: Connection, state: Personalization, policy: TrainingPolicy, *, trigger: str
) -> Decision:
    """Decides, and queues a job when due (see the module docstring). Under `persona.lock`."""
    if state.learning_paused:
        return Decision("paused", threshold=policy.threshold)
    active = await active_job(conn, state.user_id)
    fresh = await new_ids(conn, state)
    if active is not None:
        job_id, status = active
        if status == "running":
            return Decision("running", job_id, len(fresh), policy.threshold)
        if fresh:
            await _take(conn, job_id, fresh)
            await conn.execute(
                "UPDATE training_job SET preference_event_ids = ("
                " SELECT array_agg(DISTINCT x) FROM unnest(preference_event_ids || %s::bigint[])"
                " AS x), updated_at = now() WHERE id = %s",
                (fresh, job_id),
            )
            await conn.execute(
                "UPDATE training_job SET num_events = cardinality(preference_event_ids)"
                " WHERE id = %s",
                (job_id,),
            )
        return Decision("joined", job_id, len(fresh), policy.threshold)
    if len(fresh) < policy.threshold or state.adapter_id is None:
        return Decision("below_threshold", None, len(fresh), policy.threshold)
    return await _queue(conn, state, policy, fresh, trigger=trigger)


async def _take(conn: Connection, job_id: str, ids: list[int]) -> None:
    await conn.execute(
        "UPDATE preference_event SET job_id = %s WHERE id = ANY(%s) AND job_id IS NULL",
        (job_id, ids),
    )


async def _queue(
    conn: Connection, state: Personalization, policy: TrainingPolicy, fresh: list[int], *,
    trigger: str,
) -> Decision:  # fmt: skip
    # Skill jobs compete for the same trainer: they count as others' active jobs.
    user = await (
        await conn.execute(
            "SELECT role, plan_tier, now(), EXISTS (SELECT 1 FROM training_job"
            " WHERE status IN ('queued', 'running') AND (kind = 'skill' OR user_id <> %s))"
            " FROM app_user WHERE id = %s",
            (state.user_id, state.user_id),
        )
    ).fetchone()
    assert user is not None
    role, plan_tier, now, others_active = user
    tier = policy.tier_of(role, plan_tier)
    cooled = await cooldown_until(conn, state.user_id, policy.cooldown_s)
    not_before = max(now, cooled) if cooled is not None else now
    delay = (not_before - now).total_seconds() + (policy.delay_of(tier) if others_active else 0)
    dataset = await trainable_ids(conn, state, policy.max_events)
    meta = {
        "attempt": 1, "max_attempts": policy.max_attempts, "priority": policy.priority_of(tier),
        "tier": tier, "step_budget": policy.step_budget, "max_events": policy.max_events,
        "trigger": trigger,
        "new_events": len(fresh), "not_before": (now + dt.timedelta(seconds=delay)).isoformat(),
    }  # fmt: skip
    row = await (
        await conn.execute(
            "INSERT INTO training_job (adapter_id, user_id, status, num_events,"
            " preference_event_ids, meta) VALUES (%s, %s, 'queued', %s, %s, %s)"
            " ON CONFLICT (user_id) WHERE status IN ('queued', 'running') AND kind = 'persona'"
            " DO NOTHING"
            " RETURNING id::text",
            (state.adapter_id, state.user_id, len(dataset), dataset, Jsonb(meta)),
        )
    ).fetchone()
    if row is None:  # the unique index: another transaction's job (the lock makes this rare)
        return Decision("joined", None, len(fresh), policy.threshold)
    job_id = row[0]
    await _take(conn, job_id, fresh)
    await outbox.enqueue(
        conn, queue=TRAIN_QUEUE, body=message(job_id), dedup_key=dedup_key(job_id, 1),
        delay_s=delay,
    )  # fmt: skip
    return Decision(
        "queued", job_id, len(fresh), policy.threshold, now + dt.timedelta(seconds=delay)
    )
