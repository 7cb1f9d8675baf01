"""The training job's life, as the train function drives it (its contract with scheduling).

The TrainQueue message is `{"job_id": "<uuid>"}`; the `training_job` row holds the rest.
Statuses: `queued` → `running` → `succeeded` | `rejected` (trained, not promoted) | `failed`;
`cancelled` when the user paused learning or reset the model before the job ended.

The train function, per message (each call in its own transaction, on one connection):
1. `job = await claim(conn, job_id)`; None: nothing to do (already running elsewhere, done,
   cancelled, or gone): acknowledge the message. Claiming snapshots what the job trains on:
   `job.preference_event_ids` (the user's trainable events now, newest first, at most
   TRAINING_MAX_EVENTS; deleted and filtered ones are never in it), `job.instructions` (the
   persona's instructions and their `updated_at`), the persona version it starts from
   (`job.base_version`; `job.base_has_weights` False: start from a fresh LoRA), and the step
   budget (`job.step_budget`).
2. `await events_of(conn, job)` for the dataset rows (signal, score, correction, notes, the
   rated answer and its context).
3. While training, `await heartbeat(conn, job_id, progress)` now and then (it stores
   `meta.progress` and proves the worker alive); False: the job was cancelled, stop.
4. Success: publish the version (adapters.registry) and, in a transaction,
   `await succeed(conn, job_id, new_version=..., loss=..., learned_instruction_ids=...)`;
   False means the job was cancelled meanwhile (a reset): do not serve the new version.
   `learned_instruction_ids`: the instructions the version was trained to follow without
   being told (none unless the trainer distils them: then they stop being injected as prompt
   text while that version or a later one is served). `status="rejected"` records a version
   kept for review instead of promoted.
5. Failure: `await fail(conn, job_id, reason, transient=...)`: a transient failure is retried
   after `TRAINING_RETRY_BASE_S * 2**(attempt-1)` s (a new message, held in the outbox) until
   TRAINING_MAX_ATTEMPTS runs; then, or for a permanent failure, `failed` with the reason.
   Every event is kept and counts as new again.
A worker that dies mid-job leaves the job `running` with a stale heartbeat: `recover_stale`
(the sweep, the next feedback, the dispatcher's re-drive) treats that as a transient failure.

A job is a persona's (`kind` "persona": one user's feedback, under that user's lock) or a skill
adapter's (`kind` "skill", skill_jobs.py: the events of its `cluster_ids`, any user's). The
same calls drive both; a skill job locks only its own row, snapshots no instructions, leaves
`preference_event.job_id` alone and schedules nothing when it ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from shared.domain.preferences import persona, skill_jobs
from shared.domain.preferences.schedule import (
    TRAIN_QUEUE,
    TrainingPolicy,
    dedup_key,
    maybe_schedule,
    message,
    trainable_ids,
)
from shared.platform import outbox
from shared.platform.db.pool import Connection


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str | None  # a skill job's: the adapter's owner, None for a global skill
    adapter_id: str
    status: str
    attempt: int
    max_attempts: int
    step_budget: int
    priority: int
    preference_event_ids: tuple[int, ...]
    instructions: tuple[dict[str, Any], ...]
    base_version: int
    base_has_weights: bool
    meta: dict[str, Any]
    kind: str = "persona"  # persona | skill
    cluster_ids: tuple[str, ...] = ()  # a skill job's clusters; empty for a persona's


@dataclass(frozen=True)
class TrainingEvent:
    id: int
    conversation_id: str
    message_id: str
    explicit_signal: str
    score: float | None
    corrected_text: str | None
    notes: str | None
    context_text: str | None
    answer: str
    updated_at: dt.datetime
    context_embedding: Any = None  # the context's MiniLM vector (the router state's centroid)
    user_id: str | None = None  # whose event (a skill job's are many users')


@dataclass(frozen=True)
class _Locked:
    state: persona.Personalization | None  # None for a skill job: no user's lock
    user_id: str | None
    adapter_id: str
    status: str
    meta: dict[str, Any]
    kind: str
    cluster_ids: tuple[str, ...]


async def _lock(conn: Connection, job_id: str) -> _Locked | None:
    """A persona job's user's personalization row, then the job row, locked in that order (the
    order feedback takes them: no deadlock); a skill job's row alone."""
    owner = await (
        await conn.execute("SELECT user_id::text, kind FROM training_job WHERE id = %s", (job_id,))
    ).fetchone()
    if owner is None:
        return None
    state = await persona.lock(conn, owner[0]) if owner[1] == "persona" else None
    row = await (
        await conn.execute(
            "SELECT user_id::text, adapter_id::text, status, meta, kind,"
            " coalesce(cluster_ids::text[], '{}') FROM training_job WHERE id = %s FOR UPDATE",
            (job_id,),
        )
    ).fetchone()
    if row is None:
        return None
    user_id, adapter_id, status, meta, kind, clusters = row
    return _Locked(state, user_id, adapter_id, status, meta, kind, tuple(clusters))


async def claim(conn: Connection, job_id: str) -> Job | None:
    """`queued` → `running` with the job's snapshot; None when there is nothing to run."""
    locked = await _lock(conn, job_id)
    if locked is None or locked.status != "queued":
        return None
    limit = int(locked.meta.get("max_events") or 500)
    snapshot: list[dict[str, Any]] = []
    if locked.state is None:  # a skill job: its clusters' events, no persona instructions
        dataset = await skill_jobs.dataset_ids(conn, locked.cluster_ids, limit)
    else:
        dataset = await trainable_ids(conn, locked.state, limit)
        items = await persona.instructions(conn, locked.state.user_id)
        snapshot = [{"id": i.id, "kind": i.kind, "text": i.text,
                     "updated_at": i.updated_at.isoformat()} for i in items]  # fmt: skip
    artifact = await (
        await conn.execute(
            "SELECT version, schema FROM artifact WHERE id = %s", (locked.adapter_id,)
        )
    ).fetchone()
    assert artifact is not None  # the job row is deleted with its adapter
    meta = {**locked.meta, "base_version": int(artifact[0]), "instructions": snapshot}
    await conn.execute(
        "UPDATE training_job SET status = 'running', started_at = now(), updated_at = now(),"
        " preference_event_ids = %s, num_events = %s, meta = %s WHERE id = %s",
        (dataset, len(dataset), Jsonb(meta), job_id),
    )
    if locked.state is not None:  # the persona's bookkeeping of which events are new
        await conn.execute(
            "UPDATE preference_event SET job_id = %s WHERE id = ANY(%s) AND job_id IS NULL",
            (job_id, dataset),
        )
    return Job(
        id=job_id, user_id=locked.user_id, adapter_id=locked.adapter_id, status="running",
        attempt=int(meta.get("attempt", 1)), max_attempts=int(meta.get("max_attempts", 3)),
        step_budget=int(meta.get("step_budget", 64)), priority=int(meta.get("priority", 1)),
        preference_event_ids=tuple(dataset), instructions=tuple(snapshot),
        base_version=int(artifact[0]), base_has_weights=persona.has_weights(artifact[1]),
        meta=meta, kind=locked.kind, cluster_ids=locked.cluster_ids,
    )  # fmt: skip


async def events_of(conn: Connection, job: Job) -> list[TrainingEvent]:
    """The job's events as they are now: deleted ones are gone, filtered ones are skipped. A
    persona job's are its user's only; a skill job's are any user's its snapshot names."""
    owner = job.user_id if job.kind == "persona" else None
    cursor = await conn.execute(
        "SELECT e.id, e.conversation_id::text, e.message_id::text, e.explicit_signal, e.score,"
        " e.corrected_text, e.notes, e.context_text, m.content, e.updated_at,"
        " e.context_embedding, e.user_id::text"
        " FROM preference_event e JOIN message m ON m.id = e.message_id"
        " WHERE e.id = ANY(%s) AND (%s::uuid IS NULL OR e.user_id = %s::uuid)"
        " AND e.filtered_reason IS NULL ORDER BY e.updated_at DESC, e.id DESC",
        (list(job.preference_event_ids), owner, owner),
    )
    return [TrainingEvent(*row) for row in await cursor.fetchall()]


async def heartbeat(conn: Connection, job_id: str, progress: Mapping[str, Any]) -> bool:
    """Records progress (`meta.progress`) and that the worker is alive; False when the job is
    no longer running (cancelled): stop."""
    cursor = await conn.execute(
        "UPDATE training_job SET updated_at = now(),"
        " meta = meta || jsonb_build_object('progress', %s::jsonb)"
        " WHERE id = %s AND status = 'running'",
        (Jsonb(dict(progress)), job_id),
    )
    return cursor.rowcount == 1


async def succeed(
    conn: Connection, job_id: str, *, policy: TrainingPolicy, new_version: int | None,
    loss: float | None, dataset_path: str | None = None,
    learned_instruction_ids: Sequence[str] = (), status: str = "succeeded",
    outcome: Mapping[str, Any] | None = None,
) -> bool:  # fmt: skip
    """Ends a running job as `succeeded` (or `rejected`), with `outcome` merged into its meta
    (the train function's outcome: version, promotion, metrics); then, for a persona job,
    checks whether the events that came in meanwhile make the next job due (queued behind the
    cooldown)."""
    if status not in ("succeeded", "rejected"):
        raise ValueError("status must be succeeded or rejected")
    locked = await _lock(conn, job_id)
    if locked is None or locked.status != "running":
        return False
    state, user_id, adapter_id, meta = locked.state, locked.user_id, locked.adapter_id, locked.meta
    await conn.execute(
        "UPDATE training_job SET status = %s, new_version = %s, loss = %s, dataset_path = %s,"
        " meta = meta || %s, finished_at = now(), updated_at = now() WHERE id = %s",
        (status, new_version, loss, dataset_path, Jsonb(dict(outcome or {})), job_id),
    )
    if status == "succeeded" and new_version is not None:
        taken = {i["id"]: i["updated_at"] for i in meta.get("instructions", [])}
        learned = [i for i in learned_instruction_ids if i in taken]
        for instruction_id in learned:  # only the text the job saw counts as learned
            await conn.execute(
                "UPDATE persona_instruction SET learned_version = %s WHERE id = %s"
                " AND user_id = %s AND updated_at = %s::timestamptz",
                (new_version, instruction_id, user_id, taken[instruction_id]),
            )
        await conn.execute(
            "UPDATE adapter_router_state SET last_trained_at = now() WHERE artifact_id = %s",
            (adapter_id,),
        )
    if state is not None:
        await maybe_schedule(conn, state, policy, trigger="job_ended")
    return True


async def fail(
    conn: Connection, job_id: str, reason: str, *, transient: bool, policy: TrainingPolicy
) -> str | None:
    """Retry (`queued` again, after a back-off) or `failed`; returns the new status (None: the
    job was not running)."""
    locked = await _lock(conn, job_id)
    if locked is None or locked.status != "running":
        return None
    return await _fail_locked(conn, job_id, locked.meta, reason, transient=transient, policy=policy)


async def _fail_locked(
    conn: Connection, job_id: str, meta: dict[str, Any], reason: str, *, transient: bool,
    policy: TrainingPolicy,
) -> str:  # fmt: skip
    attempt = int(meta.get("attempt", 1))
    errors = [*meta.get("errors", []), {"attempt": attempt, "reason": reason[:500]}][-10:]
    if transient and attempt < int(meta.get("max_attempts", policy.max_attempts)):
        delay = policy.retry_delay_s(attempt)
        retry = {**meta, "attempt": attempt + 1, "errors": errors, "reason": reason[:500],
                 "retry_in_s": delay}  # fmt: skip
        await conn.execute(
            "UPDATE training_job SET status = 'queued', started_at = NULL, updated_at = now(),"
            " meta = %s WHERE id = %s",
            (Jsonb(retry), job_id),
        )
        await outbox.enqueue(
            conn, queue=TRAIN_QUEUE, body=message(job_id),
            dedup_key=dedup_key(job_id, attempt + 1), delay_s=delay,
        )  # fmt: skip
        return "queued"
    await conn.execute(
        "UPDATE training_job SET status = 'failed', finished_at = now(), updated_at = now(),"
        " meta = %s WHERE id = %s",
        (Jsonb({**meta, "errors": errors, "reason": reason[:500]}), job_id),
    )
    await release(conn, job_id)
    return "failed"


async def release(conn: Connection, job_id: str) -> None:
    """A job that ends without training gives its events back: they count as new again."""
    await conn.execute("UPDATE preference_event SET job_id = NULL WHERE job_id = %s", (job_id,))


async def cancel_active(
    conn: Connection, user_id: str, reason: str, *, running_too: bool
) -> list[str]:  # fmt: skip
    """Cancels the user's queued persona job (and running one with `running_too`); under the
    user's lock. A cancelled running job's `heartbeat` and `succeed` answer False. Their skill
    adapter's job, if any, goes on: a reset is the persona's."""
    statuses = ["queued", "running"] if running_too else ["queued"]
    cursor = await conn.execute(
        "UPDATE training_job SET status = 'cancelled', finished_at = now(), updated_at = now(),"
        " meta = meta || jsonb_build_object('reason', %s::text)"
        " WHERE user_id = %s AND kind = 'persona' AND status = ANY(%s) RETURNING id::text",
        (reason, user_id, statuses),
    )
    ids = [row[0] for row in await cursor.fetchall()]
    for job_id in ids:
        await release(conn, job_id)
    return ids


async def recover_stale(
    conn: Connection, policy: TrainingPolicy, *, user_id: str | None = None
) -> int:
    """Running jobs whose heartbeat is older than TRAINING_STALE_AFTER_S: their worker died.
    Each is a transient failure (retried, or failed after the last attempt)."""
    cursor = await conn.execute(
        "SELECT id::text FROM training_job WHERE status = 'running'"
        " AND updated_at < now() - make_interval(secs => %s)"
        " AND (%s::uuid IS NULL OR user_id = %s::uuid) ORDER BY user_id, id",
        (policy.stale_after_s, user_id, user_id),
    )
    count = 0
    for (job_id,) in await cursor.fetchall():
        locked = await _lock(conn, job_id)
        if locked is None or locked.status != "running":
            continue
        reason = f"no heartbeat for {policy.stale_after_s} s (the worker died?)"
        await _fail_locked(conn, job_id, locked.meta, reason, transient=True, policy=policy)
        count += 1
    return count


async def requeue_lost(conn: Connection, *, sent_before: dt.datetime) -> int:
    """Queued jobs whose current message was sent before `sent_before` (the queue lost it, or
    it sat in a DLQ) get a new one; a duplicate is harmless (`claim` runs a job once)."""
    cursor = await conn.execute(
        "SELECT j.id::text, (j.meta->>'attempt')::int FROM training_job j"
        " JOIN outbox_message o ON o.queue = %s"
        "  AND o.dedup_key = 'train:' || j.id::text || ':' || (j.meta->>'attempt')"
        " WHERE j.status = 'queued' AND o.sent_at IS NOT NULL AND o.sent_at < %s",
        (TRAIN_QUEUE, sent_before),
    )
    count = 0
    stamp = int(sent_before.timestamp())
    for job_id, attempt in await cursor.fetchall():
        made = await outbox.enqueue(
            conn, queue=TRAIN_QUEUE, body=message(job_id),
            dedup_key=f"{dedup_key(job_id, attempt)}:again:{stamp}",
        )  # fmt: skip
        count += made is not None
    return count


async def sweep(conn: Connection, policy: TrainingPolicy) -> dict[str, int]:
    """The scheduled backstop: crashed jobs are retried, and a queued job whose message has
    been out longer than a job may run (lost, or dead-lettered) is sent again."""
    stale = await recover_stale(conn, policy)
    lost_before = await (
        await conn.execute("SELECT now() - make_interval(secs => %s)", (policy.stale_after_s,))
    ).fetchone()
    assert lost_before is not None
    return {"recovered": stale, "requeued": await requeue_lost(conn, sent_before=lost_before[0])}
