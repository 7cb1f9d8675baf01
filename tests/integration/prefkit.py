"""Helpers for the preferences tests: answers written into a user's conversation without a
model call, feedback written through the domain for fixtures that have no inference service
(tenancy), and what a user's feedback left in the database."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from pydantic import SecretStr

from shared.domain.chat import conversations
from shared.domain.preferences import feedback, store
from shared.domain.preferences.schedule import TrainingPolicy
from shared.platform.settings import Settings, get_settings
from tests.integration.authkit import bearer, sign_up
from tests.integration.conftest import TOKEN

QUESTION = "What is the capital of France?"
# A unit vector: what the fixtures store where MiniLM is not at hand.
UNIT = [1.0] + [0.0] * 383


def prefs_settings(settings: Settings, service: str, **overrides: Any) -> Settings:
    """The preferences tests' settings: the test inference service, short answers, a small
    threshold, a feedback budget no test hits unless it sets its own."""
    return settings.model_copy(update={
        "inference_url": service, "inference_token": SecretStr(TOKEN), "chat_max_tokens": 12,
        "training_threshold_events": 3, "training_cooldown_s": 3600,
        "rate_feedback_per_min": 1000, **overrides,
    })  # fmt: skip


async def signed_user(api: Any) -> tuple[str, dict[str, str]]:
    """A new account: its id and bearer headers."""
    signed = await sign_up(api)
    return signed["user"]["id"], bearer(signed["access_token"])


async def fetch_one(services: Any, sql: str, *params: Any) -> Any:
    async with services.db.connection() as conn:
        return await (await conn.execute(sql, params)).fetchone()


async def fetch_all(services: Any, sql: str, *params: Any) -> list[Any]:
    async with services.db.connection() as conn:
        return await (await conn.execute(sql, params)).fetchall()


async def answered(
    conn: Any, user_id: str, *, question: str = QUESTION, answer: str | None = None
) -> tuple[str, str, str]:
    """(conversation id, user message id, assistant message id) of a new one-turn
    conversation."""
    made = await conversations.create(conn, user_id, title=None)
    asked = await conversations.append_message(
        conn, user_id, made.id, sender="user", content=question, meta={}
    )
    said = await conversations.append_message(
        conn, user_id, made.id, sender="assistant", parent_id=asked.id, meta={},
        content=answer or f"An answer {uuid.uuid4().hex[:6]}.",
    )  # fmt: skip
    return made.id, asked.id, said.id


async def counts(conn: Any, user_id: str) -> dict[str, int]:
    """Rows a user's feedback writes: events, the personalization row, the persona, jobs and
    their TrainQueue messages."""
    row = await (
        await conn.execute(
            "SELECT (SELECT count(*) FROM preference_event WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM personalization WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM artifact WHERE owner_user_id = %(u)s"
            "   AND type = 'adapter.lora'),"
            " (SELECT count(*) FROM persona_instruction WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM training_job WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM outbox_message o JOIN training_job j"
            "   ON o.body->>'job_id' = j.id::text WHERE j.user_id = %(u)s)",
            {"u": user_id},
        )
    ).fetchone()
    names = ("events", "personalization", "adapters", "instructions", "jobs", "messages")
    return dict(zip(names, row, strict=True))


async def seeded_feedback(
    user_id: str, *, signal: str = "always", notes: str | None = "be brief"
) -> tuple[int, str | None]:
    """(event id, instruction id) of a feedback on a new answer of `user_id`, written through
    the domain with a fixed embedding (for tests whose services have no inference service)."""
    conn = await psycopg.AsyncConnection.connect(get_settings().postgres_dsn)
    try:
        await register_vector_async(conn)
        _, _, message_id = await answered(conn, user_id)
        conversation_id = (
            await (
                await conn.execute(
                    "SELECT conversation_id::text FROM message WHERE id = %s", (message_id,)
                )
            ).fetchone()
        )[0]
        rated = await store.rated_message(conn, user_id, conversation_id, message_id)
        done = await feedback.record(
            conn, user_id, rated, feedback.Feedback(signal, notes=notes), embedding=UNIT,
            filtered_reason=None, policy=TrainingPolicy(),
        )  # fmt: skip
        await conn.commit()
    finally:
        await conn.close()
    return done.event.id, done.instruction.id if done.instruction else None
