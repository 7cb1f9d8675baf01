"""Failure counters that lock a subject out for a while (failed logins per account, failed MFA
codes per user), kept in Redis under a digest of the subject so no email sits in a key."""

from __future__ import annotations

import hashlib
from typing import Any

from shared.platform.errors import RateLimited


class Lockout:
    """`max_failures` failures within `window_s` lock the subject until the window ends;
    the failure that reaches the limit restarts the lock at `lock_s` (default: the window)."""

    def __init__(
        self, redis: Any, name: str, *, max_failures: int, window_s: int, lock_s: int | None = None
    ):
        self.redis, self.name = redis, name
        self.max_failures, self.window_s = max_failures, window_s
        self.lock_s = lock_s or window_s

    def _key(self, subject: str) -> str:
        return f"lockout:{self.name}:{hashlib.sha256(subject.lower().encode()).hexdigest()[:32]}"

    async def check(self, subject: str) -> None:
        key = self._key(subject)
        failures = int(await self.redis.get(key) or 0)
        if failures >= self.max_failures:
            retry = await self.redis.ttl(key)
            raise RateLimited(
                f"too many failed attempts; try again in {max(1, retry)} s",
                retry_after_s=max(1, retry),
                details={"limit": self.name},
            )

    async def fail(self, subject: str) -> int:
        key = self._key(subject)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_s, nx=True)
            failures, _ = await pipe.execute()
        if failures >= self.max_failures:
            await self.redis.expire(key, self.lock_s)
        return int(failures)

    async def clear(self, subject: str) -> None:
        await self.redis.delete(self._key(subject))
