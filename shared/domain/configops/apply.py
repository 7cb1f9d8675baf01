"""The apply step (the apply-patch queue function's work): a patch that is `applying` becomes
a new artifact version through the artifacts store's own update (or create) path, so whatever
happens on any new version happens here too (validation and reference checks again, the row
lock, version N+1), and the patch is `applied` with the version it wrote. Adapters are
ConfigOps' own (configops.adapter_apply: a new skill, or the next version of an adapter).

Idempotent: the patch row is locked for the whole step and only an `applying` patch is
worked on, so a redelivered message (or two deliveries at once) applies it once. The base is
checked again: an artifact that moved past the patch's base fails it ("stale base"). Any
failure of the change leaves the artifact as it was (a savepoint) and the patch `failed` with
the reason; only an unexpected error (the database gone) propagates, for the queue to retry."""

from __future__ import annotations

import logging
from typing import Any, cast

from shared.domain.artifacts import store as artifacts
from shared.domain.configops import adapter_apply, store, validate
from shared.domain.configops.models import Patch
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.pool import Connection
from shared.platform.errors import AppError, Conflict, ValidationError
from shared.platform.settings import Settings

log = logging.getLogger(__name__)
ADMIN = store.Viewer(None, True)
MAX_NOTE = 500


async def apply(conn: Connection, patch_id: int, *, settings: Settings) -> Patch | None:
    """The patch after the step (None when it no longer exists). `settings`: the training
    policy of the skill jobs an adapter patch queues (configops.adapter_apply)."""
    async with conn.transaction():
        try:
            patch = await store.lock(conn, patch_id, ADMIN)
        except AppError:
            log.info("patch %s is gone; nothing to apply", patch_id)
            return None
        if patch.status != "applying":
            log.info("patch %s is %s; nothing to apply", patch_id, patch.status)
            return patch
        actor = Actor(user_id=patch.decided_by)
        try:
            async with conn.transaction():  # a savepoint: a failed change leaves no trace
                artifact, meta = await _change(conn, patch, settings)
        except AppError as exc:
            reason = _reason(exc, patch)
            await store.update(conn, patch_id, status="failed", failure_reason=reason)
            await audit.record(conn, "configops.apply_failed", actor=actor,
                               subject_user_id=patch.owner_user_id,
                               details={"patch_id": patch_id, "reason": reason})  # fmt: skip
            return await store.get(conn, patch_id, ADMIN)
        await store.update(conn, patch_id, status="applied", artifact_id=artifact.id,
                           applied_version=artifact.version, stamp=("applied_at",),
                           **({"meta": {**patch.meta, **meta}} if meta else {}))  # fmt: skip
        await audit.record(conn, "configops.applied", actor=actor,
                           subject_user_id=patch.owner_user_id,
                           details={"patch_id": patch_id, "artifact_id": artifact.id,
                                    "version": artifact.version})  # fmt: skip
        return await store.get(conn, patch_id, ADMIN)


async def _change(
    conn: Connection, patch: Patch, settings: Settings
) -> tuple[artifacts.Artifact, dict[str, Any]]:
    """The artifact as the patch leaves it, and what the patch's `meta` records besides."""
    # The store acts as the artifact's owner; an owner-less (system) artifact needs an admin's
    # powers, which an approved patch carries (its approver was one, or it was a rule for an
    # owner's own artifact, which then has an owner).
    owner = cast(str, patch.owner_user_id)  # None (the system's) is a valid owner to the store
    privileged = patch.proposer != "user" or patch.owner_user_id is None
    note = f"config patch {patch.id}" + (f": {patch.justification}" if patch.justification else "")
    # The version records whose text it is: the model's (system_llm) or a person's.
    author = "llm" if patch.proposer == "system_llm" else "user"
    if patch.kind == adapter_apply.KIND:  # ConfigOps' own rules for adapters
        return await adapter_apply.apply_adapter_patch(
            conn, patch, settings=settings, note=note[:MAX_NOTE], author=author
        )
    if patch.creates:
        assert patch.kind is not None and patch.new_name is not None
        schema, problems = validate.patched({"kind": patch.kind}, patch.patch)
        if problems:
            raise ValidationError("the patch does not apply", details=problems)
        return await artifacts.create(
            conn, owner, name=patch.new_name, schema=schema, type=patch.kind,
            description=patch.new_description, visibility=patch.new_visibility or "private",
            is_admin=privileged, created_by=author,
        ), {}  # fmt: skip
    assert patch.artifact_id is not None
    changed = await artifacts.update(
        conn, owner, patch.artifact_id, patch=patch.patch, base_version=patch.base_version,
        change_note=note[:MAX_NOTE], is_admin=privileged, created_by=author,
    )  # fmt: skip
    if changed.version == patch.base_version:
        raise ValidationError("the patch changes nothing in the current schema")
    return changed, {}


def _reason(exc: AppError, patch: Patch) -> str:
    details = exc.details if isinstance(exc.details, dict) else {}
    if isinstance(exc, Conflict) and details.get("reason") == "stale_version":
        return (f"stale base: the artifact is at version {details.get('current_version')},"
                f" the patch was written against version {patch.base_version}")  # fmt: skip
    problems = exc.details if isinstance(exc.details, list) else []
    said = "; ".join(f"{p.get('path') or '/'}: {p.get('message')}" for p in problems[:5]
                     if isinstance(p, dict))  # fmt: skip
    return f"{exc.message}{': ' + said if said else ''}"[:1000]


async def give_up(conn: Connection, patch_id: int, reason: str) -> None:
    """The apply step failed on every delivery the queue allows (its message goes to the
    DLQ): a patch still `applying` becomes `failed`, so no patch waits on a message that will
    never come. Best effort; the artifact was never touched (each try rolled back)."""
    async with conn.transaction():
        patch = await store.lock(conn, patch_id, ADMIN)
        if patch.status != "applying":
            return
        said = f"the apply step failed on every delivery: {reason}"[:1000]
        await store.update(conn, patch_id, status="failed", failure_reason=said)
        await audit.record(conn, "configops.apply_failed", actor=Actor(user_id=patch.decided_by),
                           subject_user_id=patch.owner_user_id,
                           details={"patch_id": patch_id, "reason": said})  # fmt: skip
