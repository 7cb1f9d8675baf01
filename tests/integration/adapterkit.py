"""Helpers for the adapters API tests: a user's persona adapter made through the domain,
training_job rows written as the train function would leave them, and candidate versions
written as rows (the registry's `publish` serves every version it writes)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shared.domain.adapters.objects import put_version, version_prefix
from shared.domain.adapters.registry import AdapterFiles, adapter_schema
from shared.domain.adapters.versions import next_number
from shared.platform.settings import get_settings
from tests.integration.prefkit import seeded_feedback


async def connect() -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(get_settings().postgres_dsn, autocommit=True)


async def persona_of(user_id: str) -> str:
    """The id of `user_id`'s persona (made by a first feedback, at a weightless version 1)."""
    await seeded_feedback(user_id, signal="like", notes=None)
    async with await connect() as conn:
        row = await (
            await conn.execute(
                "SELECT adapter_id::text FROM personalization WHERE user_id = %s", (user_id,)
            )
        ).fetchone()
    assert row is not None and row[0] is not None
    return str(row[0])


async def job_row(
    user_id: str, adapter_id: str, *, status: str, new_version: int | None = None,
    loss: float | None = None, events: int | None = 12, seconds: float | None = 90.0,
    meta: dict[str, Any] | None = None, ended: dt.datetime | None = None,
) -> str:  # fmt: skip
    """A training_job row as the train function leaves it (`seconds` from start to end)."""
    ends = ended or dt.datetime.now(dt.UTC)
    started = ends - dt.timedelta(seconds=seconds) if seconds is not None else None
    finished = ends if status not in ("queued", "running") else None
    base = {"attempt": 1, "max_attempts": 3, "trigger": "threshold"}
    async with await connect() as conn:
        row = await (
            await conn.execute(
                "INSERT INTO training_job (adapter_id, user_id, status, num_events, loss,"
                " new_version, meta, created_at, started_at, finished_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id::text",
                (adapter_id, user_id, status, events, loss, new_version,
                 Jsonb({**base, **(meta or {})}), started or ends, started, finished),
            )
        ).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])


async def candidate(
    s3: Any, bucket: str, owner: str | None, adapter_id: str, files: AdapterFiles, *,
    metrics: dict[str, Any], job_id: str | None, adapter_type: str = "skill",
) -> tuple[int, str]:  # fmt: skip
    """A version kept for review (not promoted, not served): its files in the store and its
    row, numbered max + 1, as the train function writes one. Returns (version, prefix)."""
    async with await connect() as conn:
        number = await next_number(conn, adapter_id)
        prefix = version_prefix(owner, adapter_id, number)
        put_version(s3, bucket, prefix, files.files)
        schema = {
            **adapter_schema(files, prefix=prefix, adapter_type=adapter_type, version=number),
            "metrics": metrics, "job_id": job_id, "promoted": False,
            "training_config": {"rank": 4, "alpha": 8, "seed": 0},
        }  # fmt: skip
        await conn.execute(
            "INSERT INTO artifact_version (artifact_id, version, schema, fs_path, created_by,"
            " change_note) VALUES (%s, %s, %s, %s, 'system', 'kept for review')",
            (adapter_id, number, Jsonb(schema), prefix),
        )
    return number, prefix


def new_job_id() -> str:
    return str(uuid.uuid4())
