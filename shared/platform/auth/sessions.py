"""Sessions: a row in Postgres per login (device and user agent recorded), mirrored in Redis so
each request checks revocation without a query; each holds one family of rotating refresh
tokens. Presenting a refresh token twice revokes its whole session (reuse detection)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.platform.auth.tokens import Principal, digest, issue_access, new_refresh_token
from shared.platform.db.pool import Pool
from shared.platform.errors import NotFound, Unauthorized
from shared.platform.settings import Settings

_KEY = "auth:session:{}"


class RefreshReused(Unauthorized):
    """A refresh token presented a second time: its session (the family) is revoked."""

    def __init__(self, user_id: str, session_id: str):
        super().__init__("refresh token reused; the session is revoked")
        self.user_id, self.session_id = user_id, session_id


@dataclass(frozen=True)
class TokenPair:
    principal: Principal
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class SessionInfo:
    id: str
    created_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None


class Sessions:
    def __init__(self, settings: Settings, pool: Pool, redis: Any):
        self.settings, self.pool, self.redis = settings, pool, redis

    async def open(
        self, user_id: str, role: str, *, user_agent: str | None, ip: str | None
    ) -> TokenPair:
        ttl = self.settings.auth_refresh_ttl_s
        token, token_hash = new_refresh_token()
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO auth_session (user_id, expires_at, user_agent, ip_addr)"
                " VALUES (%s, now() + make_interval(secs => %s), %s, %s) RETURNING id::text",
                (user_id, ttl, (user_agent or "")[:512] or None, ip),
            )
            (session_id,) = await _one(cursor)
            await self._store_refresh(conn, session_id, token_hash)
        await self.redis.set(_KEY.format(session_id), user_id, ex=ttl)
        if self.settings.auth_single_session:
            await self.revoke_all(user_id, keep=session_id)
        return self._pair(Principal(user_id, role, session_id), token)

    async def rotate(self, refresh_token: str) -> TokenPair:
        """A new pair for a valid, unused refresh token; a used one revokes its session."""
        reused: tuple[str, str] | None = None
        async with self.pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT rt.id, rt.session_id::text, rt.used_at IS NOT NULL,"
                "       rt.expires_at < now() OR s.expires_at < now() OR s.revoked_at IS NOT NULL"
                "       OR NOT u.is_active, s.user_id::text, u.role"
                "  FROM refresh_token rt JOIN auth_session s ON s.id = rt.session_id"
                "  JOIN app_user u ON u.id = s.user_id"
                " WHERE rt.token_hash = %s FOR UPDATE OF rt",
                (digest(refresh_token),),
            )
            row = await cursor.fetchone()
            if row is None:
                raise Unauthorized("invalid refresh token")
            token_id, session_id, used, dead, user_id, role = row
            if used:
                reused = (user_id, session_id)
            elif dead:
                raise Unauthorized("the session has ended; log in again")
            else:
                await conn.execute(
                    "UPDATE refresh_token SET used_at = now() WHERE id = %s", (token_id,)
                )
                token, token_hash = new_refresh_token()
                await self._store_refresh(conn, session_id, token_hash)
        if reused is not None:
            await self.revoke(reused[1])
            raise RefreshReused(*reused)
        return self._pair(Principal(user_id, role, session_id), token)

    async def revoke(self, session_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE auth_session SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
                (session_id,),
            )
        await self.redis.delete(_KEY.format(session_id))

    async def revoke_all(self, user_id: str, *, keep: str | None = None) -> int:
        """Ends every session of the user (but `keep`): password reset, single-session mode."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE auth_session SET revoked_at = now() WHERE user_id = %s"
                " AND revoked_at IS NULL AND id IS DISTINCT FROM %s::uuid RETURNING id::text",
                (user_id, keep),
            )
            ended = [row[0] for row in await cursor.fetchall()]
        if ended:
            await self.redis.delete(*(_KEY.format(sid) for sid in ended))
        return len(ended)

    async def list_for(self, user_id: str) -> list[SessionInfo]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT id::text, created_at, expires_at, user_agent, host(ip_addr)"
                " FROM auth_session WHERE user_id = %s AND revoked_at IS NULL"
                " AND expires_at > now() ORDER BY created_at DESC",
                (user_id,),
            )
            return [SessionInfo(*row) for row in await cursor.fetchall()]

    async def revoke_for(self, user_id: str, session_id: str) -> None:
        """Ends one of the user's own sessions; another user's id is simply not found."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE auth_session SET revoked_at = now() WHERE id = %s AND user_id = %s"
                " AND revoked_at IS NULL RETURNING id",
                (session_id, user_id),
            )
            if await cursor.fetchone() is None:
                raise NotFound("no such session")
        await self.redis.delete(_KEY.format(session_id))

    async def is_active(self, principal: Principal) -> bool:
        """Redis first; on a miss (evicted, restarted) Postgres decides and refills Redis."""
        key = _KEY.format(principal.session_id)
        if await self.redis.get(key) is not None:
            return True
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT extract(epoch FROM s.expires_at - now())::int FROM auth_session s"
                " JOIN app_user u ON u.id = s.user_id WHERE s.id = %s AND s.user_id = %s"
                " AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active",
                (principal.session_id, principal.user_id),
            )
            row = await cursor.fetchone()
        if row is None:
            return False
        await self.redis.set(key, principal.user_id, ex=max(1, row[0]))
        return True

    async def _store_refresh(self, conn: Any, session_id: str, token_hash: str) -> None:
        await conn.execute(
            "INSERT INTO refresh_token (session_id, token_hash, expires_at)"
            " VALUES (%s, %s, now() + make_interval(secs => %s))",
            (session_id, token_hash, self.settings.auth_refresh_ttl_s),
        )

    def _pair(self, principal: Principal, refresh_token: str) -> TokenPair:
        return TokenPair(
            principal=principal,
            access_token=issue_access(self.settings, principal),
            refresh_token=refresh_token,
            expires_in=self.settings.auth_access_ttl_s,
        )


async def _one(cursor: Any) -> tuple[Any, ...]:
    row = await cursor.fetchone()
    assert row is not None
    return tuple(row)
