"""Applying an approved adapter patch (configops.adapter_patches), inside configops.apply's
savepoint: anything raised here leaves no trace, and the patch `failed` with the reason.

- A new skill: the `adapter.lora` artifact at a weightless version 1, its router state with
  the cluster's centroid (what the router's `adapter_centroid` is), and its first skill
  training job (with its outbox message), all in the caller's transaction.
- A change: the patched schema (which keeps the served weights' fields) becomes the next
  version (`versions.next_number`, max + 1) and the pointer moves to it, as a rollback or an
  approval moves it (`versions.point`). A merge also queues a skill job on the adapter merged
  into, over its own cluster's events and the merged one's.

The rules are checked again here, against the database as it is now (a cluster retired, or
a merge target disabled, since the proposal fails the patch)."""

from __future__ import annotations

import uuid
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.domain.adapters import versions
from shared.domain.artifacts import store as artifacts
from shared.domain.artifacts.kinds import schema_problems
from shared.domain.configops import adapter_patches, validate
from shared.domain.configops.adapter_patches import KIND, cluster_of
from shared.domain.configops.models import Patch
from shared.domain.preferences import skill_jobs
from shared.domain.preferences.schedule import TrainingPolicy
from shared.platform.db.pool import Connection
from shared.platform.errors import Conflict, NotFound, ValidationError
from shared.platform.settings import Settings

CLUSTER_INDEX = "artifact_skill_cluster_idx"


async def apply_adapter_patch(
    conn: Connection, patch: Patch, *, settings: Settings, note: str, author: str
) -> tuple[artifacts.Artifact, dict[str, Any]]:
    """The artifact as it now is, and what the patch's `meta` records besides (the training
    job queued, if any)."""
    if patch.creates:
        return await _create(conn, patch, settings=settings, note=note, author=author)
    return await _change(conn, patch, settings=settings, note=note, author=author)


def _checked(problems: list[dict[str, str]], message: str) -> None:
    if problems:
        raise ValidationError(message, details=problems)


async def _create(
    conn: Connection, patch: Patch, *, settings: Settings, note: str, author: str
) -> tuple[artifacts.Artifact, dict[str, Any]]:
    assert patch.new_name is not None
    schema, problems = validate.patched({"kind": KIND}, patch.patch)
    _checked(problems, "the patch does not apply")
    _checked(schema_problems(schema), "the artifact schema is not valid")
    owner, visibility = patch.owner_user_id, patch.new_visibility or "private"
    _checked(await adapter_patches.problems(
        conn, artifact_id=None, base={"kind": KIND}, schema=schema, owner_user_id=owner,
        visibility=visibility, exclude_patch=patch.id,
    ), "the skill adapter no longer checks out")  # fmt: skip
    cluster_id = cast(str, cluster_of(schema))
    adapter_id = str(uuid.uuid4())
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO artifact (id, owner_user_id, type, name, description, schema,"
                " visibility, version) VALUES (%s, %s, %s, %s, %s, %s, %s, 1)",
                (adapter_id, owner, KIND, patch.new_name, patch.new_description, Jsonb(schema),
                 visibility),
            )  # fmt: skip
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == CLUSTER_INDEX:
            raise Conflict("a skill adapter serves this cluster already") from exc
        raise Conflict(f"an adapter named {patch.new_name!r} exists already") from exc
    await conn.execute(
        "INSERT INTO artifact_version (artifact_id, version, schema, created_by, change_note)"
        " VALUES (%s, 1, %s, %s, %s)",
        (adapter_id, Jsonb(schema), author, note),
    )
    await conn.execute(
        "INSERT INTO adapter_router_state (artifact_id, centroid_vec)"
        " SELECT %s, centroid FROM semantic_cluster WHERE id = %s",
        (adapter_id, cluster_id),
    )
    job_id = await skill_jobs.enqueue(
        conn, adapter_id=adapter_id, cluster_ids=[cluster_id],
        reason=f"config patch {patch.id}: new skill",
        policy=TrainingPolicy.from_settings(settings), step_budget=settings.skill_step_budget,
    )  # fmt: skip
    return await _artifact(conn, owner, adapter_id), {"training_job_id": job_id}


async def _change(
    conn: Connection, patch: Patch, *, settings: Settings, note: str, author: str
) -> tuple[artifacts.Artifact, dict[str, Any]]:
    adapter_id = cast(str, patch.artifact_id)
    row = await (
        await conn.cursor(row_factory=dict_row).execute(
            "SELECT owner_user_id::text AS owner, visibility, version, schema, fs_path"
            " FROM artifact WHERE id = %s AND type = %s FOR UPDATE",
            (adapter_id, KIND),
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such artifact")
    served, current = int(row["version"]), row["schema"]
    if patch.base_version is not None and patch.base_version != served:
        raise Conflict(f"the artifact is at version {served}, not {patch.base_version}",
                       details={"reason": "stale_version", "current_version": served})  # fmt: skip
    after, problems = validate.patched(current, patch.patch)
    _checked(problems, "the patch does not apply")
    if after == current:
        raise ValidationError("the patch changes nothing in the current schema")
    _checked(schema_problems(after), "the artifact schema is not valid")
    _checked(await adapter_patches.problems(
        conn, artifact_id=adapter_id, base=current, schema=after, owner_user_id=row["owner"],
        visibility=row["visibility"],
    ), "the patch no longer checks out")  # fmt: skip
    number = await versions.next_number(conn, adapter_id)
    await conn.execute(
        "INSERT INTO artifact_version (artifact_id, version, schema, fs_path, created_by,"
        " change_note) VALUES (%s, %s, %s, %s, %s, %s)",
        (adapter_id, number, Jsonb(after), row["fs_path"], author, note),
    )
    await versions.point(conn, adapter_id, number)
    meta: dict[str, Any] = {}
    merged_into = after.get("merged_into")
    if merged_into and merged_into != current.get("merged_into"):
        meta["training_job_id"] = await _retrain_target(
            conn, str(merged_into), merged=adapter_id, patch_id=patch.id, settings=settings
        )
    return await _artifact(conn, row["owner"], adapter_id), meta


async def _retrain_target(
    conn: Connection,
    target_id: str,
    *,
    merged: str,
    patch_id: int,
    settings: Settings,
) -> str | None:
    """The surviving skill's job over its clusters, the merged one's now among them
    (`skill_jobs.clusters_of` follows `merged_into`, so its later jobs keep them too): a new
    job, or its queued one widened; None while one runs (its next retraining covers them)."""
    return await skill_jobs.retrain(
        conn, adapter_id=target_id, reason=f"config patch {patch_id}: merge of {merged}",
        policy=TrainingPolicy.from_settings(settings), step_budget=settings.skill_step_budget,
    )  # fmt: skip


async def _artifact(conn: Connection, owner: str | None, adapter_id: str) -> artifacts.Artifact:
    # The store reads as a user; None (the system's, global) is a valid reader of a global one.
    return await artifacts.get(conn, cast(str, owner), adapter_id)
