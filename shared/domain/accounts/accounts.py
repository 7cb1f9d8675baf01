"""Accounts: sign-up, password login and password changes against `app_user` +
`user_auth_credential`. Every function takes the acting user's id where it reads or writes
one user's rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from shared.domain.accounts.passwords import check_policy, hash_password, verify_password
from shared.platform.db.pool import Connection
from shared.platform.errors import Conflict, NotFound, Unauthorized


@dataclass(frozen=True)
class User:
    id: str
    email: str
    handle: str | None
    role: str
    created_at: datetime
    email_verified: bool
    is_active: bool = True


_USER = (
    "SELECT u.id::text, u.email::text, u.handle, u.role, u.created_at,"
    " u.email_verified_at IS NOT NULL, u.is_active FROM app_user u"
)


async def sign_up(
    conn: psycopg.AsyncConnection, email: str, password: str, handle: str | None
) -> User:
    """Creates the account in the caller's transaction (so the welcome mail is enqueued with
    it); a taken email is a 409."""
    check_policy(password, email)
    hashed = hash_password(password)
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO app_user (email, handle) VALUES (%s, %s) RETURNING id::text",
                (email, handle),
            )
            row = await cursor.fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO user_auth_credential (user_id, password_hash, password_algo)"
                " VALUES (%s, %s, 'argon2id')",
                (row[0], hashed),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict("an account with this email exists already") from exc
    return await _get(conn, row[0])


async def log_in(conn: Connection, email: str, password: str) -> User:
    """The user, or one 401 for an unknown email, a wrong password and a disabled account
    alike (and the same hashing cost for each)."""
    cursor = await conn.execute(
        "SELECT u.id::text, c.password_hash, u.is_active FROM app_user u"
        " LEFT JOIN user_auth_credential c ON c.user_id = u.id WHERE u.email = %s",
        (email,),
    )
    row = await cursor.fetchone()
    stored = row[1] if row else None
    matches, rehashed = verify_password(stored, password)
    if not matches or row is None or not row[2]:
        raise Unauthorized("wrong email or password")
    if rehashed:  # the hashing parameters changed since this hash was made
        await conn.execute(
            "UPDATE user_auth_credential SET password_hash = %s, last_updated_at = now()"
            " WHERE user_id = %s",
            (rehashed, row[0]),
        )
    return await _get(conn, row[0])


async def has_password(conn: Connection, user_id: str) -> bool:
    """Whether the account has a password (one made through an OIDC provider may not)."""
    cursor = await conn.execute(
        "SELECT password_hash IS NOT NULL FROM user_auth_credential WHERE user_id = %s",
        (user_id,),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def check_password(conn: Connection, user_id: str, password: str) -> None:
    cursor = await conn.execute(
        "SELECT password_hash FROM user_auth_credential WHERE user_id = %s", (user_id,)
    )
    row = await cursor.fetchone()
    if not verify_password(row[0] if row else None, password)[0]:
        raise Unauthorized("the current password is wrong")


async def set_password(conn: psycopg.AsyncConnection, user_id: str, password: str) -> None:
    user = await _get(conn, user_id)
    check_policy(password, user.email)
    await conn.execute(
        "INSERT INTO user_auth_credential (user_id, password_hash, password_algo,"
        " last_updated_at) VALUES (%s, %s, 'argon2id', now()) ON CONFLICT (user_id) DO UPDATE"
        " SET password_hash = EXCLUDED.password_hash, password_algo = 'argon2id',"
        " last_updated_at = now()",
        (user_id, hash_password(password)),
    )


async def mark_email_verified(conn: Connection, user_id: str) -> User:
    await conn.execute(
        "UPDATE app_user SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = %s",
        (user_id,),
    )
    return await _get(conn, user_id)


async def find_by_email(conn: Connection, email: str) -> User | None:
    cursor = await conn.execute(_USER + " WHERE u.email = %s AND u.is_active", (email,))
    row = await cursor.fetchone()
    return User(*row) if row else None


async def get_user(conn: Connection, user_id: str) -> User:
    return await user_on(conn, user_id)


async def user_on(conn: psycopg.AsyncConnection, user_id: str) -> User:
    """An active account, read on the caller's connection (404 when there is none)."""
    return await _get(conn, user_id)


async def get_caller(conn: Connection, user_id: str) -> User:
    """The authenticated caller's account. A validly signed token can outlive its account
    (deleted, deactivated): that is a 401 for the caller, not a 404 for an object."""
    try:
        return await get_user(conn, user_id)
    except NotFound:
        raise Unauthorized("the account no longer exists; log in again") from None


async def _get(conn: psycopg.AsyncConnection, user_id: str) -> User:
    cursor = await conn.execute(_USER + " WHERE u.id = %s AND u.is_active", (user_id,))
    row = await cursor.fetchone()
    if row is None:
        raise NotFound("no such user")
    return User(*row)
