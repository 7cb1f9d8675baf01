"""What a job publishes its version as: a persona's, or a skill adapter's (issue 20 item 4).

A skill job trains like a persona job (job.py) but publishes under the skill adapter's own
name, type and owner (None for a global skill), and its version keeps the fields that bind
the adapter to its cluster (`BINDING`, from the schema served when the job starts): the
router activates a skill by its cluster, and a version without them would unbind it once
promoted. A skill that was disabled (pruned, or merged into another) is not trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.preferences.jobs import Job
from shared.platform.db.pool import Connection

# The served schema's fields a skill's new version carries over (SPEC §7.3-7.4).
BINDING = ("cluster_id", "applicability", "status", "merged_into")


@dataclass(frozen=True)
class Target:
    """The adapter a job's version is published to, as `registry.publish` wants it."""

    name: str
    adapter_type: str  # persona | skill
    owner_user_id: str | None
    binding: dict[str, Any] = field(default_factory=dict)  # extra schema fields to keep
    disabled: bool = False  # a disabled skill: the job fails, permanently


PERSONA = "persona"


def persona(job: Job) -> Target:
    return Target(name=PERSONA, adapter_type=PERSONA, owner_user_id=job.user_id)


def binding(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The binding fields the served schema has (a field it lacks stays absent)."""
    return {key: schema[key] for key in BINDING if key in schema}


def skill(job: Job, name: str, schema: Mapping[str, Any]) -> Target:
    return Target(
        name=name, adapter_type="skill", owner_user_id=job.user_id, binding=binding(schema),
        disabled=schema.get("status") == "disabled",
    )  # fmt: skip


async def target(conn: Connection, job: Job) -> Target:
    """The job's target, read as the adapter is served now."""
    if job.kind != "skill":
        return persona(job)
    row = await (
        await conn.execute("SELECT name, schema FROM artifact WHERE id = %s", (job.adapter_id,))
    ).fetchone()
    assert row is not None  # the job row is deleted with its adapter
    return skill(job, row[0], row[1])


def extra_schema(
    target: Target, *, job_id: str, promoted: bool, metrics: Mapping[str, Any],
    training_config: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """What the trained version's schema records besides the kind's fields: its job, whether
    it was promoted, its metrics and config, and a skill's binding."""
    return {**target.binding, "job_id": job_id, "promoted": promoted, "metrics": dict(metrics),
            "training_config": dict(training_config)}  # fmt: skip
