"""Deleting an account asks the person to prove it is them again (contract A): the password
of an account that has one, the authenticator code when MFA is on, and for an account with
neither (OIDC only) a session signed in within ACCOUNT_DELETE_REAUTH_S."""

from __future__ import annotations

from shared.domain.account_data.errors import InvalidCode, InvalidPassword, ReauthRequired
from shared.domain.accounts import accounts
from shared.domain.accounts.mfa import Mfa
from shared.platform.clients import Clients
from shared.platform.errors import Unauthorized, ValidationError


def _missing(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field} is required: {why}",
                           details=[{"loc": [field], "msg": why, "type": "missing"}])  # fmt: skip


async def confirm(
    clients: Clients, user_id: str, session_id: str, *, password: str | None, code: str | None
) -> None:
    """Returns when the caller proved who they are; raises the contract's error otherwise."""
    async with clients.db.connection() as conn:
        has_password = await accounts.has_password(conn, user_id)
        if has_password:
            if not password:
                raise _missing("password", "this account has a password")
            try:
                await accounts.check_password(conn, user_id, password)
            except Unauthorized:
                raise InvalidPassword("the password is wrong") from None
    mfa = Mfa(clients.settings, clients.db, clients.redis)
    if await mfa.enabled(user_id):
        if not code:
            raise _missing("code", "this account uses MFA")
        if await mfa.verify(user_id, code) is None:  # a lockout raises RateLimited (429)
            raise InvalidCode("the code is wrong")
        return
    if has_password:
        return
    async with clients.db.connection() as conn:
        fresh = await (
            await conn.execute(
                "SELECT 1 FROM auth_session WHERE id = %s AND user_id = %s"
                " AND created_at > now() - make_interval(secs => %s)",
                (session_id, user_id, clients.settings.account_delete_reauth_s),
            )
        ).fetchone()
    if fresh is None:
        raise ReauthRequired("sign in again, then delete the account within a few minutes")
