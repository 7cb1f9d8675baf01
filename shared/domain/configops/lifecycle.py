"""Deciding a patch and queueing its apply step. Each change locks the patch row, so two admins
deciding at once take turns and the second sees the first's decision (409), and is audited in
the same transaction as the change it records.

Apply is asynchronous: an approved patch becomes `applying` and one message (deduplicated on
the patch id in the outbox) goes to the apply-patch queue after commit; asking again while it
is `applying` answers the same patch and queues nothing more."""

from __future__ import annotations

from shared.domain.configops import store
from shared.domain.configops.models import APPLY_QUEUE, DECISIONS, Patch, apply_dedup_key
from shared.platform import audit, outbox
from shared.platform.audit import Actor
from shared.platform.db.pool import Connection
from shared.platform.errors import Conflict, Forbidden, ValidationError

ADMIN = store.Viewer(None, True)


def _not_now(patch: Patch, wanted: str) -> Conflict:
    return Conflict(
        f"the patch is {patch.status}, not {wanted}",
        details={"reason": patch.status, "status": patch.status},
    )


async def decide(
    conn: Connection,
    patch_id: int,
    *,
    decision: str,
    reason: str,
    actor: Actor,
    is_admin: bool,
) -> Patch:
    """An admin approves or rejects a pending patch, with the reason."""
    if decision not in DECISIONS:
        raise ValidationError(f"decision must be one of {', '.join(DECISIONS)}")
    if not is_admin:
        raise Forbidden("only admins decide patches")
    async with conn.transaction():
        patch = await store.lock(conn, patch_id, ADMIN)
        if patch.status != "pending":
            raise _not_now(patch, "pending")
        status = "approved" if decision == "approve" else "rejected"
        await store.update(conn, patch_id, status=status, decided_by=actor.user_id,
                           decision_reason=reason, stamp=("decided_at",))  # fmt: skip
        await audit.record(conn, "configops.decided", actor=actor,
                           subject_user_id=patch.owner_user_id,
                           details={"patch_id": patch_id, "decision": decision,
                                    "reason": reason[:500]})  # fmt: skip
        return await store.get(conn, patch_id, ADMIN)


async def request_apply(conn: Connection, patch_id: int, *, actor: Actor, is_admin: bool) -> Patch:
    """Queues the apply step of an approved patch (idempotent while it is `applying`)."""
    if not is_admin:
        raise Forbidden("only admins apply patches")
    async with conn.transaction():
        patch = await store.lock(conn, patch_id, ADMIN)
        if patch.status == "applying":
            return patch
        if patch.status != "approved":
            raise _not_now(patch, "approved")
        await _queue(conn, patch, actor)
        return await store.get(conn, patch_id, ADMIN)


async def approve_and_queue(
    conn: Connection, patch_id: int, *, actor: Actor, decided_by: str | None, reason: str
) -> None:
    """An automatic approval (a rule, not an admin): decided and queued in one step."""
    async with conn.transaction():
        patch = await store.lock(conn, patch_id, ADMIN)
        await store.update(conn, patch_id, status="approved", decided_by=decided_by,
                           decision_reason=reason, stamp=("decided_at",))  # fmt: skip
        await audit.record(conn, "configops.decided", actor=actor,
                           subject_user_id=patch.owner_user_id,
                           details={"patch_id": patch_id, "decision": "approve",
                                    "reason": reason, "automatic": True})  # fmt: skip
        await _queue(conn, patch, actor)


async def _queue(conn: Connection, patch: Patch, actor: Actor) -> None:
    await store.update(conn, patch.id, status="applying")
    await outbox.enqueue(conn, queue=APPLY_QUEUE, body={"patch_id": patch.id},
                         dedup_key=apply_dedup_key(patch.id))  # fmt: skip
    await audit.record(conn, "configops.apply_requested", actor=actor,
                       subject_user_id=patch.owner_user_id,
                       details={"patch_id": patch.id,
                                "artifact_id": patch.artifact_id})  # fmt: skip
