"""Who is on each socket: the principal its auth frame proved, in Redis keyed by connection
id, since each frame may reach another function instance. It lasts as long as the credential
it came from (an auth frame with a fresh token extends it); `$disconnect` drops it.

Also the principal of the session cookie sent with the upgrade (`$connect` is the only event
that carries headers), for an auth frame that names no token.
"""

from __future__ import annotations

import json
from typing import Any

from shared.platform.auth.tokens import Principal


def _key(connection_id: str, *, upgrade: bool) -> str:
    return f"ws:{'upgrade' if upgrade else 'principal'}:{connection_id}"


class SocketPrincipals:
    def __init__(self, redis: Any):
        self.redis = redis

    async def remember(
        self, connection_id: str, principal: Principal, *, ttl_s: int, upgrade: bool = False
    ) -> None:
        value = {"user_id": principal.user_id, "role": principal.role,
                 "session_id": principal.session_id}  # fmt: skip
        key = _key(connection_id, upgrade=upgrade)
        await self.redis.set(key, json.dumps(value), ex=max(1, ttl_s))

    async def recall(
        self, connection_id: str, *, upgrade: bool = False
    ) -> tuple[Principal, int] | None:
        """The principal and the seconds it has left, or None."""
        key = _key(connection_id, upgrade=upgrade)
        async with self.redis.pipeline(transaction=False) as pipe:
            value, ttl = await pipe.get(key).ttl(key).execute()
        if value is None:
            return None
        return Principal(**json.loads(value)), max(1, int(ttl))

    async def forget(self, connection_id: str) -> None:
        await self.redis.delete(
            _key(connection_id, upgrade=False), _key(connection_id, upgrade=True)
        )
