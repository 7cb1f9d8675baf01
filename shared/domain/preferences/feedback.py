"""The flows behind the preferences function: record a feedback, and the controls a user has
over learning (pause, instructions, reset, deleting events). Each runs in one transaction
under the user's personalization lock (`persona.lock`), so it serialises with the user's other
feedback and with the train function's claim and completion of their jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.domain.preferences import jobs, persona, schedule, store
from shared.domain.preferences.schedule import Decision, TrainingPolicy
from shared.platform.db.pool import Connection

AppliedAs = Literal["weights", "prompt", "over_budget"]


@dataclass(frozen=True)
class Feedback:
    signal: str
    score: float | None = None
    corrected_text: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Recorded:
    event: store.PreferenceEvent
    replaced: bool
    adapter_id: str
    instruction: persona.Instruction | None
    decision: Decision


async def record(
    conn: Connection, user_id: str, rated: store.RatedMessage, feedback: Feedback, *,
    embedding: Sequence[float], filtered_reason: str | None, policy: TrainingPolicy,
) -> Recorded:  # fmt: skip
    """Writes the event (replacing the user's earlier one on that answer), makes the persona
    on the first feedback, turns `always`/`never` notes into an instruction, and queues a job
    when one is due: all in one transaction, so a refused step leaves nothing behind."""
    score = store.check_score(feedback.signal, feedback.score)
    async with conn.transaction():
        state = await persona.ensure_persona(conn, await persona.lock(conn, user_id))
        assert state.adapter_id is not None
        written = await store.upsert(
            conn, user_id, rated, signal=feedback.signal, score=score,
            corrected_text=feedback.corrected_text, notes=feedback.notes,
            embedding=embedding, filtered_reason=filtered_reason,
        )  # fmt: skip
        instruction = await persona.sync_from_event(
            conn, user_id, written.event.id, signal=feedback.signal, notes=feedback.notes,
            usable=filtered_reason is None,
        )  # fmt: skip
        await score_persona(conn, user_id, state.adapter_id)
        await jobs.recover_stale(conn, policy, user_id=user_id)
        decision = await schedule.maybe_schedule(conn, state, policy, trigger="feedback")
        event = await store.get(conn, user_id, written.event.id)  # with the job it joined
    return Recorded(event, written.replaced, state.adapter_id, instruction, decision)


async def score_persona(conn: Connection, user_id: str, adapter_id: str) -> None:
    """The persona's `success_score` in its router state: the mean score of the user's
    feedback on answers its weights shaped (the answer's `adapters` name it, applied as
    `lora`), recomputed at each feedback, so a replaced rating counts once."""
    await conn.execute(
        "UPDATE adapter_router_state s SET success_score = agg.mean,"
        " meta = s.meta || jsonb_build_object('scored_events', agg.n)"
        " FROM (SELECT avg(e.score) AS mean, count(*) AS n FROM preference_event e"
        "       JOIN message m ON m.id = e.message_id WHERE e.user_id = %(user)s"
        "        AND m.meta->'adapters' @> jsonb_build_array("
        "            jsonb_build_object('id', %(adapter)s::text, 'how', 'lora'))) agg"
        " WHERE s.artifact_id = %(adapter)s::uuid AND agg.n > 0",
        {"user": user_id, "adapter": adapter_id},
    )


async def delete_event(conn: Connection, user_id: str, event_id: int) -> None:
    async with conn.transaction():
        await persona.lock(conn, user_id)
        await store.delete(conn, user_id, event_id)


# --- the user's controls ------------------------------------------------------------------


async def set_paused(
    conn: Connection, user_id: str, paused: bool, *, policy: TrainingPolicy
) -> Decision | None:
    """Pausing cancels a job that has not started (its events count as new again; a running
    one finishes: it was given its data before the pause); resuming checks the threshold at
    once. Returns the scheduling decision when resuming."""
    async with conn.transaction():
        state = await persona.lock(conn, user_id)
        await conn.execute(
            "UPDATE personalization SET learning_paused = %s, updated_at = now()"
            " WHERE user_id = %s",
            (paused, user_id),
        )
        if paused:
            await jobs.cancel_active(conn, user_id, "learning paused", running_too=False)
            return None
        state = persona.Personalization(state.user_id, state.adapter_id, False, state.reset_at)
        return await schedule.maybe_schedule(conn, state, policy, trigger="resumed")


async def reset(conn: Connection, user_id: str, *, clear_instructions: bool) -> int | None:
    """Back to the base model: the persona serves a weightless version, any queued or running
    job is cancelled (a running one's result is not served: `jobs.succeed` answers False),
    events given so far are not trained on again, and every instruction applies as prompt
    text again (or is deleted with `clear_instructions`). Returns the new persona version
    (None: it had no weights)."""
    async with conn.transaction():
        state = await persona.lock(conn, user_id)
        await jobs.cancel_active(conn, user_id, "model reset to the base", running_too=True)
        version = await persona.reset_to_base(conn, state)
        if clear_instructions:
            await conn.execute("DELETE FROM persona_instruction WHERE user_id = %s", (user_id,))
        await conn.execute(
            "UPDATE personalization SET reset_at = now(), updated_at = now() WHERE user_id = %s",
            (user_id,),
        )
    return version


async def edit_instruction(
    conn: Connection, user_id: str, instruction_id: str, *, kind: str | None, text: str | None
) -> persona.Instruction:
    async with conn.transaction():
        await persona.lock(conn, user_id)
        return await persona.edit_instruction(conn, user_id, instruction_id, kind=kind, text=text)


async def delete_instruction(conn: Connection, user_id: str, instruction_id: str) -> None:
    async with conn.transaction():
        await persona.lock(conn, user_id)
        await persona.delete_instruction(conn, user_id, instruction_id)


# --- what the user sees -------------------------------------------------------------------


@dataclass(frozen=True)
class InstructionView:
    id: str
    kind: str
    text: str
    source_event_id: int | None
    learned_version: int | None
    applied_as: AppliedAs
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class JobView:
    id: str
    status: str
    attempt: int
    max_attempts: int
    priority: int
    num_events: int | None
    step_budget: int | None
    not_before: str | None
    reason: str | None
    progress: dict[str, Any] | None
    new_version: int | None
    loss: float | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


@dataclass(frozen=True)
class TrainingView:
    threshold: int
    cooldown_s: int
    new_events: int
    cooldown_until: dt.datetime | None
    active_job: JobView | None
    last_job: JobView | None


@dataclass(frozen=True)
class PersonalizationView:
    adapter_id: str | None
    adapter_version: int | None
    has_weights: bool
    learning_paused: bool
    reset_at: dt.datetime | None
    instructions: list[InstructionView]
    training: TrainingView


def instruction_views(
    items: Sequence[persona.Instruction], version: int | None, weighted: bool
) -> list[InstructionView]:
    """How each instruction applies on the local service: learned by the served weights, as
    prompt text, or left out of the prompt's budget (newest first win)."""
    pending = [i for i in items if not persona.learned_by(i, version, weighted)]
    in_prompt = {i.id for i in pending[: persona.fits(pending)]}
    views = []
    for i in items:
        how: AppliedAs = (
            "weights" if persona.learned_by(i, version, weighted)
            else "prompt" if i.id in in_prompt else "over_budget"
        )  # fmt: skip
        views.append(
            InstructionView(i.id, i.kind, i.text, i.source_event_id, i.learned_version, how,
                            i.created_at, i.updated_at)
        )  # fmt: skip
    return views


# The user's persona jobs (a skill adapter's jobs, even of their own skill, are not these).
_JOB = (
    "SELECT id::text, status, coalesce((meta->>'attempt')::int, 1),"
    " coalesce((meta->>'max_attempts')::int, 1), coalesce((meta->>'priority')::int, 1),"
    " num_events, (meta->>'step_budget')::int, meta->>'not_before', meta->>'reason',"
    " meta->'progress', new_version, loss, created_at, started_at, finished_at"
    " FROM training_job WHERE user_id = %s AND kind = 'persona'"
)


async def view(conn: Connection, user_id: str, *, policy: TrainingPolicy) -> PersonalizationView:
    row = await (
        await conn.execute(
            "SELECT p.adapter_id::text, a.version, a.schema, p.learning_paused, p.reset_at"
            " FROM personalization p LEFT JOIN artifact a ON a.id = p.adapter_id"
            " WHERE p.user_id = %s",
            (user_id,),
        )
    ).fetchone()
    adapter_id, version, schema, paused, reset_at = row or (None, None, None, False, None)
    weighted = persona.has_weights(schema or {})
    state = persona.Personalization(user_id, adapter_id, paused, reset_at)
    items = await persona.instructions(conn, user_id)
    active = await (
        await conn.execute(_JOB + " AND status IN ('queued', 'running')", (user_id,))
    ).fetchone()
    last = await (
        await conn.execute(
            _JOB + " AND status NOT IN ('queued', 'running') ORDER BY created_at DESC LIMIT 1",
            (user_id,),
        )
    ).fetchone()
    training = TrainingView(
        threshold=policy.threshold, cooldown_s=policy.cooldown_s,
        new_events=len(await schedule.new_ids(conn, state)),
        cooldown_until=await schedule.cooldown_until(conn, user_id, policy.cooldown_s),
        active_job=JobView(*active) if active else None,
        last_job=JobView(*last) if last else None,
    )  # fmt: skip
    return PersonalizationView(
        adapter_id=adapter_id, adapter_version=version, has_weights=weighted,
        learning_paused=paused, reset_at=reset_at,
        instructions=instruction_views(items, version, weighted), training=training,
    )  # fmt: skip
