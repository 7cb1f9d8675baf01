"""Per-user concurrency caps in Redis (by default 3 running workflows and 2 decodes per user).

Each running piece of work holds a lease: a member of a sorted set scored by its expiry, so a
lease whose holder died (a killed Lambda) frees itself after `lease_s` instead of blocking the
user for ever. Over the cap: 409 `conflict` with `details.reason: busy`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.platform.errors import Conflict
from shared.platform.settings import Settings

BUSY_RETRY_AFTER_S = 3

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


def caps(settings: Settings) -> dict[str, int]:
    return {"workflows": settings.cap_workflows_per_user, "decodes": settings.cap_decodes_per_user}


class ConcurrencyCaps:
    def __init__(self, redis: Any, limits: dict[str, int], *, lease_s: float = 600.0):
        self.redis, self.limits, self.lease_ms = redis, limits, int(lease_s * 1000)
        self._acquire = redis.register_script(_ACQUIRE)

    @asynccontextmanager
    async def hold(self, kind: str, user_id: str) -> AsyncIterator[str]:
        """A lease on one of `user_id`'s `kind` slots for the body of the `async with`."""
        limit = self.limits[kind]
        key, lease = f"cap:{kind}:{user_id}", uuid.uuid4().hex
        if not int(await self._acquire(keys=[key], args=[limit, self.lease_ms, lease])):
            raise Conflict(
                f"{limit} {kind} already running for this user; wait for one to finish",
                details={"reason": "busy", "kind": kind, "limit": limit},
                # A turn usually ends within seconds; polling sooner only meets the cap again.
                headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
            )
        try:
            yield lease
        finally:
            await self.redis.zrem(key, lease)

    async def running(self, kind: str, user_id: str) -> int:
        return int(await self.redis.zcard(f"cap:{kind}:{user_id}"))
