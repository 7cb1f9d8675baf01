"""Proposing a patch: who may, against which base, validated and dry-run before anyone decides.

The `configops` rate budget is spent here, not at a route, so the system's own proposals (the
scheduled jobs, the architect step) count like anyone's. An invalid patch is stored `rejected`
at once with its problems, and nothing else changes. A valid one is `pending`, unless the
proposer is a user patching their own private artifact and CONFIGOPS_AUTO_APPROVE_OWN is on:
then it is approved by that rule and its apply step queued at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonpatch
from psycopg.rows import dict_row

from shared.domain.artifacts.kinds import KINDS, problem
from shared.domain.configops import adapter_patches, lifecycle, store, validate
from shared.domain.configops.models import NewArtifact, Patch, Proposer
from shared.domain.configops.simulate import dry_run
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.pool import Connection
from shared.platform.errors import Forbidden, NotFound, ValidationError
from shared.platform.limits.rate import RateLimiter, rules
from shared.platform.settings import Settings


@dataclass(frozen=True)
class Proposal:
    """`patch` on `artifact_id` at `base_version` (None: the current one), or `restore_version`
    of it (a rollback, computed as the patch from the current schema to that version's), or
    `patch` applied to `{"kind": create.kind}` to make a new artifact (a new `adapter.lora`,
    a skill, names its owner in `create.owner_user_id`: configops.adapter_patches)."""

    patch: list[dict[str, Any]] | None = None
    artifact_id: str | None = None
    base_version: int | None = None
    create: NewArtifact | None = None
    restore_version: int | None = None
    justification: str | None = None


@dataclass(frozen=True)
class _Target:
    artifact_id: str | None
    kind: str
    owner_user_id: str | None
    visibility: str
    version: int | None  # the current version (None: a new artifact)
    base: dict[str, Any]  # the schema the patch applies to


async def propose(
    conn: Connection,
    proposal: Proposal,
    *,
    proposer: Proposer,
    actor: Actor,
    redis: Any,
    settings: Settings,
) -> Patch:
    """The stored patch (201 whatever its status); 400 for a request that is not a proposal,
    404 for an artifact the proposer may not see, 403 for one they may see but not patch,
    429 past the budget."""
    if (proposal.artifact_id is None) == (proposal.create is None):
        raise ValidationError("name either artifact_id or create, not both")
    await RateLimiter(redis).enforce(rules(settings)["configops"], proposer.subject)
    async with conn.transaction():
        target = await _target(conn, proposal, proposer)
        ops = await _ops(conn, proposal, target)
        after, found = validate.patched(target.base, ops)
        if not found and target.version is not None and proposal.base_version not in (
            None, target.version,
        ):  # fmt: skip
            found = [problem((), f"stale base: the artifact is at version {target.version},"
                             f" not {proposal.base_version}")]  # fmt: skip
        if not found and after == target.base:
            found = [problem((), "the patch changes nothing")]
        if not found:
            found = await validate.problems(
                conn, kind=target.kind, schema=after, owner_user_id=target.owner_user_id,
                visibility=target.visibility, privileged=proposer.privileged,
                artifact_id=target.artifact_id, base=target.base,
            )  # fmt: skip
        simulated = None
        if not found:
            simulated = await dry_run(
                conn, kind=target.kind, artifact_id=target.artifact_id,
                owner_user_id=target.owner_user_id, before=target.base, after=after,
            )  # fmt: skip
        create = proposal.create
        patch_id = await store.insert(
            conn, artifact_id=target.artifact_id, kind=target.kind,
            owner_user_id=target.owner_user_id, proposer=proposer.kind,
            proposed_by=proposer.user_id, patch=ops, justification=proposal.justification,
            status="rejected" if found else "pending",
            base_version=target.version if proposal.base_version is None
            else proposal.base_version,
            new_name=create.name if create else None,
            new_description=create.description if create else None,
            new_visibility=create.visibility if create else None,
            validation={"ok": not found, "problems": found}, dry_run=simulated,
            decision_reason="invalid: see validation.problems" if found else None,
            meta=_meta(proposal, target, after),
        )  # fmt: skip
        await audit.record(conn, "configops.proposed", actor=actor,
                           subject_user_id=target.owner_user_id,
                           details={"patch_id": patch_id, "artifact_id": target.artifact_id,
                                    "kind": target.kind, "valid": not found,
                                    "proposer": proposer.kind})  # fmt: skip
        if not found and _auto_approved(settings, proposer, target):
            await lifecycle.approve_and_queue(
                conn, patch_id, actor=actor, decided_by=proposer.user_id,
                reason="auto-approved: the owner's own private artifact"
                " (CONFIGOPS_AUTO_APPROVE_OWN)",
            )  # fmt: skip
        return await store.get(conn, patch_id, store.Viewer(None, True))


def _meta(proposal: Proposal, target: _Target, after: Any) -> dict[str, Any]:
    """What the row keeps besides the patch: the version a rollback restores, and the cluster
    a new skill adapter serves (no second open patch may create one for it)."""
    meta: dict[str, Any] = {}
    if proposal.restore_version:
        meta["restores_version"] = proposal.restore_version
    cluster_id = adapter_patches.cluster_of(after)
    if target.artifact_id is None and target.kind == adapter_patches.KIND and cluster_id:
        meta["cluster_id"] = cluster_id.lower()
    return meta


def _auto_approved(settings: Settings, proposer: Proposer, target: _Target) -> bool:
    return (
        settings.configops_auto_approve_own
        and proposer.kind == "user"
        and target.owner_user_id == proposer.user_id
        and target.visibility == "private"
    )


async def _target(conn: Connection, proposal: Proposal, proposer: Proposer) -> _Target:
    if proposal.create is not None:
        return _new_target(proposal.create, proposer)
    row = await (
        await conn.cursor(row_factory=dict_row).execute(
            "SELECT id::text, type, owner_user_id::text AS owner, visibility, version, schema"
            " FROM artifact WHERE id = %s FOR SHARE",
            (proposal.artifact_id,),
        )
    ).fetchone()
    if row is None:
        raise NotFound("no such artifact")
    if not proposer.privileged:
        mine = row["owner"] == proposer.user_id
        if not mine and row["visibility"] == "private":
            raise NotFound("no such artifact")  # another user's private artifact: no leak
        if not mine or row["visibility"] != "private":
            raise Forbidden("users propose patches only for their own private artifacts")
        if row["type"] == adapter_patches.KIND and not adapter_patches.is_skill(row["schema"]):
            # the persona has its own pause and reset
            raise Forbidden("users change only their own skill adapters through ConfigOps")
    return _Target(row["id"], row["type"], row["owner"], row["visibility"], row["version"],
                   row["schema"])  # fmt: skip


def _new_target(create: NewArtifact, proposer: Proposer) -> _Target:
    if create.kind not in KINDS:
        raise ValidationError(f"create.kind must be one of {', '.join(KINDS)}")
    owner = create.owner_user_id if proposer.kind == "system_llm" else proposer.user_id
    if create.kind == adapter_patches.KIND:
        if not proposer.privileged:
            raise Forbidden("skill adapters are created only by admins and the system")
        owner = create.owner_user_id  # the cluster's user, or None (validation checks which)
    elif create.owner_user_id is not None and proposer.kind != "system_llm":
        raise ValidationError("create.owner_user_id is given only for a new adapter.lora")
    if not proposer.privileged and create.visibility != "private":
        raise Forbidden("users propose new artifacts only as private ones")
    if owner is None and create.visibility != "global":
        raise ValidationError("an artifact without an owner must be global")
    return _Target(None, create.kind, owner, create.visibility, None, {"kind": create.kind})


async def _ops(conn: Connection, proposal: Proposal, target: _Target) -> Any:
    if proposal.restore_version is None:
        if proposal.patch is None:
            raise ValidationError("send a patch (RFC 6902 operations) or restore_version")
        return proposal.patch
    if proposal.patch is not None or target.artifact_id is None:
        raise ValidationError("restore_version restores an existing artifact, without a patch")
    row = await (
        await conn.execute(
            "SELECT schema FROM artifact_version WHERE artifact_id = %s AND version = %s",
            (target.artifact_id, proposal.restore_version),
        )
    ).fetchone()
    if row is None:
        raise ValidationError(f"the artifact has no version {proposal.restore_version}")
    ops = jsonpatch.make_patch(target.base, row[0]).patch
    if not ops:
        raise ValidationError(f"version {proposal.restore_version} is the current schema")
    return ops
