"""Training jobs as their user sees them, and the figures the metrics endpoint reports.

A job (`jobs.py` drives its life) is shown with its status, the progress the train function
reports (`meta.progress`: step, total, loss), the reason it failed or was cancelled
(`meta.reason`), its attempts, the events it trained on, and the version it made: `metrics`
(the job's `meta.metrics`, else what the version's schema recorded), `promoted` (the version's
schema says, else a job that `succeeded` with a version was promoted) and `version_state`
(`served`, `kept` while not served, `discarded` once its row is gone). Another user's job is
not found, never forbidden; admins list every user's (`list_all_jobs`, each with its owner).
A job is a persona's or a skill adapter's (`kind`, with the skill's `cluster_ids`); a user's
list holds their private skill's jobs too, and a global skill's job has no owner (None).

`stats` reads the whole table when the metrics are scraped, so the figures are right whatever
process ran the jobs (a train container, another instance) and need no shared counter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.platform.db.cursor import newest_first
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound, ValidationError

STATUSES = ("queued", "running", "succeeded", "rejected", "failed", "cancelled")
ENDED = ("succeeded", "rejected", "failed", "cancelled")
# Seconds from a job's (last) start to its end; training runs minutes on a CPU.
DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


@dataclass(frozen=True)
class JobView:
    id: str
    adapter_id: str
    status: str
    progress: dict[str, Any] | None
    metrics: dict[str, Any] | None
    reason: str | None
    attempt: int
    max_attempts: int
    errors: list[dict[str, Any]]
    events_used: int | None
    loss: float | None
    base_version: int | None
    new_version: int | None
    promoted: bool | None
    version_state: str | None  # served | kept | discarded; None: no version made
    trigger: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    kind: str  # persona | skill
    cluster_ids: list[str]  # a skill job's clusters; empty for a persona's


@dataclass(frozen=True)
class OwnedJob(JobView):
    """A job with its owner, as an admin sees every user's (None: a global skill's job)."""

    user_id: str | None
    user_email: str | None


_COLUMNS = """
SELECT j.id::text, j.adapter_id::text, j.status, j.meta, j.num_events, j.loss, j.new_version,
       v.schema, a.version, j.created_at, j.started_at, j.finished_at, j.updated_at, j.kind,
       coalesce(j.cluster_ids::text[], '{}')"""
_FROM = """
  FROM training_job j
  LEFT JOIN artifact a ON a.id = j.adapter_id
  LEFT JOIN artifact_version v ON v.artifact_id = j.adapter_id AND v.version = j.new_version"""
# The user's own jobs.
_JOB = _COLUMNS + _FROM + "\n WHERE j.user_id = %(user)s\n"
# Every user's, with the owner (admins only: the caller checks the role); a global skill's
# job has none.
_ANY_JOB = (
    _COLUMNS + ", j.user_id::text, u.email::text" + _FROM
    + "\n  LEFT JOIN app_user u ON u.id = j.user_id\n WHERE TRUE\n"
)  # fmt: skip


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def outcome(
    status: str, new_version: int | None, schema: dict[str, Any] | None, served: int | None
) -> tuple[bool | None, str | None]:
    """(promoted, version_state) of a job whose version has `schema` (None: no such row) while
    the adapter serves `served`. Promoted is what the version's schema records, else a job
    that succeeded with a version; no version made: (None, None)."""
    if new_version is None:
        return None, None
    recorded = (schema or {}).get("promoted")
    promoted = recorded if isinstance(recorded, bool) else status == "succeeded"
    if schema is None:
        return promoted, "discarded"
    return promoted, "served" if served == new_version else "kept"


def _view(row: tuple[Any, ...]) -> JobView:
    (id_, adapter_id, status, meta, events, loss, new_version, schema, served, created_at,
     started_at, finished_at, updated_at, kind, cluster_ids) = row  # fmt: skip
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else None
    if metrics is None and schema is not None and isinstance(schema.get("metrics"), dict):
        metrics = schema["metrics"]
    promoted, state = outcome(status, new_version, schema, served)
    progress = meta.get("progress")
    errors = meta.get("errors")
    return JobView(
        id=id_, adapter_id=adapter_id, status=status,
        progress=progress if isinstance(progress, dict) else None, metrics=metrics,
        reason=meta.get("reason") if isinstance(meta.get("reason"), str) else None,
        attempt=_int(meta.get("attempt")) or 1, max_attempts=_int(meta.get("max_attempts")) or 1,
        errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
        events_used=events, loss=loss, base_version=_int(meta.get("base_version")),
        new_version=new_version, promoted=promoted, version_state=state,
        trigger=meta.get("trigger") if isinstance(meta.get("trigger"), str) else None,
        created_at=created_at, started_at=started_at, finished_at=finished_at,
        updated_at=updated_at, kind=kind, cluster_ids=list(cluster_ids),
    )  # fmt: skip


def _uuid(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise ValidationError(f"{name} must be a UUID") from exc


def _filters(
    status: str | None, adapter_id: str | None, user_id: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The ` AND …` conditions of a job list, and their parameters."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}")
    where, params = [], {}
    if status:
        where.append("j.status = %(status)s")
        params["status"] = status
    if adapter_id:
        params["adapter"] = _uuid(adapter_id, "adapter_id")
        where.append("j.adapter_id = %(adapter)s")
    if user_id:
        params["owner"] = _uuid(user_id, "user_id")
        where.append("j.user_id = %(owner)s")
    return "".join(f" AND {w}" for w in where), params


async def list_jobs(
    conn: Connection, user_id: str, *, status: str | None = None, adapter_id: str | None = None,
    cursor: str | None = None, limit: int = 20,
) -> tuple[list[JobView], str | None]:  # fmt: skip
    """The user's jobs, newest first (keyset on (created_at, id))."""
    where, params = _filters(status, adapter_id)
    return await newest_first(
        conn, _JOB + where, {**params, "user": user_id},
        order=("j.created_at", "j.id"), cursor=cursor, limit=limit, row=_view,
        key=lambda j: (j.created_at, j.id),
    )  # fmt: skip


def _owned(row: tuple[Any, ...]) -> OwnedJob:
    *job, user_id, email = row
    return OwnedJob(**_view(tuple(job)).__dict__, user_id=user_id, user_email=email)


async def list_all_jobs(
    conn: Connection, *, status: str | None = None, user_id: str | None = None,
    adapter_id: str | None = None, cursor: str | None = None, limit: int = 20,
) -> tuple[list[OwnedJob], str | None]:  # fmt: skip
    """Every user's jobs (or `user_id`'s), newest first, each with its owner: for admins
    only (the caller checks the role)."""
    where, params = _filters(status, adapter_id, user_id)
    return await newest_first(
        conn, _ANY_JOB + where, params,
        order=("j.created_at", "j.id"), cursor=cursor, limit=limit, row=_owned,
        key=lambda j: (j.created_at, j.id),
    )  # fmt: skip


async def get_job(conn: Connection, user_id: str, job_id: str) -> JobView:
    try:
        key = str(uuid.UUID(job_id))
    except ValueError:
        raise NotFound("no such training job") from None
    row = await (
        await conn.execute(_JOB + " AND j.id = %(id)s", {"user": user_id, "id": key})
    ).fetchone()
    if row is None:
        raise NotFound("no such training job")
    return _view(row)


# --- what the metrics endpoint reports ------------------------------------------------------


@dataclass(frozen=True)
class Durations:
    """One outcome's histogram: `buckets[i]` jobs took at most `DURATION_BUCKETS[i]` s."""

    count: int
    total_s: float
    buckets: tuple[int, ...]


@dataclass(frozen=True)
class JobStats:
    by_status: dict[str, int]
    durations: dict[str, Durations]  # by ended status, for jobs that started
    last_loss: float | None  # of the job that ended last with a loss
    last_finished_at: datetime | None


# One column per bucket (the bounds are this module's constants, never input).
_BUCKET_COUNTS = ", ".join(f"count(*) FILTER (WHERE d <= {le!r})" for le in DURATION_BUCKETS)


async def stats(conn: Connection) -> JobStats:
    """Every user's jobs, counted now."""
    counts = dict.fromkeys(STATUSES, 0)
    rows = await (
        await conn.execute("SELECT status, count(*) FROM training_job GROUP BY status")
    ).fetchall()
    counts.update({status: int(n) for status, n in rows})
    rows = await (
        await conn.execute(
            f"SELECT status, count(*), coalesce(sum(d), 0), {_BUCKET_COUNTS}"  # noqa: S608 - constant
            "   FROM (SELECT status, extract(epoch FROM finished_at - started_at)::float8 AS d"
            "           FROM training_job WHERE finished_at IS NOT NULL"
            "            AND started_at IS NOT NULL AND status = ANY(%s)) t"
            "  GROUP BY status",
            (list(ENDED),),
        )
    ).fetchall()
    durations = {status: Durations(int(n), float(total), tuple(int(b) for b in buckets))
                 for status, n, total, *buckets in rows}  # fmt: skip
    last = await (
        await conn.execute(
            "SELECT (SELECT loss FROM training_job WHERE loss IS NOT NULL"
            "         AND finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1),"
            " (SELECT max(finished_at) FROM training_job)"
        )
    ).fetchone()
    assert last is not None
    return JobStats(counts, durations, last[0], last[1])
