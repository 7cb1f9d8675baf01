"""What admins do to accounts: list them, change a role, disable or re-enable one. Every change
is audited in the same transaction. The caller ends the user's sessions after a role change or
a disable, so old tokens stop carrying the old role at once.

An account being deleted (a pending `account_purge`, DELETE /v1/me or an admin's DELETE) is
disabled too, but it is not "disabled": it cannot be enabled again and disappears when the
purge is done. Admins see it as `deleting`, read with the account in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.domain.accounts.accounts import _USER, User
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.db.pool import Connection
from shared.platform.errors import Conflict, NotFound

AccountState = Literal["active", "disabled", "deleting"]


@dataclass(frozen=True)
class AdminUser(User):
    """An account as admins see it: whether MFA is on, and the time its deletion was asked
    for while the purge runs."""

    mfa_enabled: bool = False
    deletion_requested_at: datetime | None = None

    @property
    def status(self) -> AccountState:
        if self.deletion_requested_at is not None:
            return "deleting"
        return "active" if self.is_active else "disabled"


# accounts._USER's columns, then MFA and the pending purge's time (account_purge.user_id is
# unique: at most one row joins, and a finished purge no longer names the user).
_ADMIN_USER = _USER.replace(
    " FROM app_user u",
    ", EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = u.id AND m.enabled_at IS NOT NULL),"
    " p.requested_at FROM app_user u"
    " LEFT JOIN account_purge p ON p.user_id = u.id AND p.status = 'pending'",
)


def _admin_user(row: Any) -> AdminUser:
    return AdminUser(*row)  # the columns in the fields' order


async def list_users(
    conn: Connection, *, cursor: str | None, limit: int, email_contains: str | None
) -> tuple[list[AdminUser], str | None]:
    """Newest first, including disabled accounts and those being deleted (admins see
    everyone until the purge removes them)."""
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if cursor:
        created, last_id = decode_cursor(cursor, 2)
        where.append("(u.created_at, u.id) < (%s::timestamptz, %s::uuid)")
        params += [created, last_id]
    if email_contains:
        where.append("u.email::text ILIKE %s")
        params.append("%" + email_contains.replace("%", r"\%").replace("_", r"\_") + "%")
    rows = await (
        await conn.execute(
            f"{_ADMIN_USER} WHERE {' AND '.join(where)}"
            " ORDER BY u.created_at DESC, u.id DESC LIMIT %s",
            (*params, probe_size(limit)),
        )
    ).fetchall()
    return keyset_page([_admin_user(row) for row in rows], limit,
                       lambda u: encode_cursor(u.created_at, u.id))  # fmt: skip


async def update_user(
    conn: Connection,
    user_id: str,
    *,
    role: str | None,
    is_active: bool | None,
    actor: Actor,
) -> AdminUser:
    if actor.user_id == user_id and (role == "user" or is_active is False):
        raise Conflict("an admin cannot demote or disable their own account")
    async with conn.transaction():
        row = await (
            await conn.execute(
                "SELECT role, is_active FROM app_user WHERE id = %s FOR UPDATE", (user_id,)
            )
        ).fetchone()
        if row is None:
            raise NotFound("no such user")
        before_role, before_active = row
        if is_active and not before_active and await _being_deleted(conn, user_id):
            # The purge is queued and the user's sessions are gone: enabling the account
            # now would hand back an account whose data is about to disappear.
            raise Conflict("this account is being deleted")
        await conn.execute(
            "UPDATE app_user SET role = coalesce(%s, role), is_active = coalesce(%s, is_active)"
            " WHERE id = %s",
            (role, is_active, user_id),
        )
        if role is not None and role != before_role:
            await audit.record(
                conn,
                "role_changed",
                actor=actor,
                subject_user_id=user_id,
                details={"from": before_role, "to": role},
            )
        if is_active is not None and is_active != before_active:
            event = "user_enabled" if is_active else "user_disabled"
            await audit.record(conn, event, actor=actor, subject_user_id=user_id)
        updated = await (
            await conn.execute(_ADMIN_USER + " WHERE u.id = %s", (user_id,))
        ).fetchone()
    assert updated is not None
    return _admin_user(updated)


async def _being_deleted(conn: Connection, user_id: str) -> bool:
    row = await (
        await conn.execute(
            "SELECT 1 FROM account_purge WHERE user_id = %s AND status = 'pending'", (user_id,)
        )
    ).fetchone()
    return row is not None
