"""What admins do to accounts: list them, change a role, disable or re-enable one. Every change
is audited in the same transaction. The caller ends the user's sessions after a role change or
a disable, so old tokens stop carrying the old role at once."""

from __future__ import annotations

from typing import Any

from shared.domain.accounts.accounts import _USER, User
from shared.platform import audit
from shared.platform.audit import Actor
from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.db.pool import Connection
from shared.platform.errors import Conflict, NotFound


async def list_users(
    conn: Connection, *, cursor: str | None, limit: int, email_contains: str | None
) -> tuple[list[User], str | None]:
    """Newest first, including disabled accounts (admins see everyone)."""
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
            f"{_USER} WHERE {' AND '.join(where)} ORDER BY u.created_at DESC, u.id DESC LIMIT %s",
            (*params, probe_size(limit)),
        )
    ).fetchall()
    return keyset_page([User(*row) for row in rows], limit,
                       lambda u: encode_cursor(u.created_at, u.id))  # fmt: skip


async def update_user(
    conn: Connection,
    user_id: str,
    *,
    role: str | None,
    is_active: bool | None,
    actor: Actor,
) -> User:
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
        updated = await (await conn.execute(_USER + " WHERE u.id = %s", (user_id,))).fetchone()
    assert updated is not None
    return User(*updated)


async def _being_deleted(conn: Connection, user_id: str) -> bool:
    row = await (
        await conn.execute(
            "SELECT 1 FROM account_purge WHERE user_id = %s AND status = 'pending'", (user_id,)
        )
    ).fetchone()
    return row is not None
