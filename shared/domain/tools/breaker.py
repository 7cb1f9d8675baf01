"""A circuit breaker per tool, kept in Redis so every function instance sees the same state
(it opens after 5 failures in 1 minute).

Failures are members of a sorted set scored by time (Redis's clock, so instances with skewed
clocks agree); the script that records one trims the window and, at the threshold, sets an
`open` key that expires after the cool-down. While it exists, calls fail fast with 503. When it
expires the next call is let through (half-open): a success clears the failures, another
failure re-opens the breaker at once because the window still holds the earlier ones.

The `circuitbreaker` package the LLM client uses counts consecutive failures in one process;
a tool run by many Lambda instances needs the shared, windowed count instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shared.platform.errors import Unavailable

_RECORD_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, threshold, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
if redis.call('ZCARD', KEYS[1]) >= threshold then
  redis.call('SET', KEYS[2], now, 'PX', cooldown)
  redis.call('SET', KEYS[3], now, 'PX', window + cooldown)
  return 1
end
return 0
"""

# A success after the cool-down (half-open) closes the breaker: the failures are forgotten.
# Successes while it was never tripped change nothing: 5 failures in a minute open it even
# with successes between them.
_RECORD_SUCCESS = """
if redis.call('EXISTS', KEYS[3]) == 1 and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[3])
  return 1
end
return 0
"""


class CircuitOpen(Unavailable):
    """503 while a tool's breaker is open; never retried (the wait is the point)."""


@dataclass(frozen=True)
class BreakerRule:
    failures: int = 5
    window_s: float = 60.0
    cooldown_s: float = 30.0


class ToolBreaker:
    def __init__(self, redis: Any, rule: BreakerRule | None = None):
        self.redis, self.rule = redis, rule or BreakerRule()
        self._record = redis.register_script(_RECORD_FAILURE)
        self._close = redis.register_script(_RECORD_SUCCESS)

    @staticmethod
    def _keys(tool: str) -> tuple[str, str, str]:
        return f"tool:failures:{tool}", f"tool:open:{tool}", f"tool:tripped:{tool}"

    async def check(self, tool: str) -> None:
        """Raises 503 while the tool's breaker is open."""
        open_key = self._keys(tool)[1]
        left_ms = int(await self.redis.pttl(open_key))
        if left_ms > 0:
            retry_after = max(1, round(left_ms / 1000))
            raise CircuitOpen(
                f"tool {tool} failed {self.rule.failures} times in "
                f"{self.rule.window_s:g} s; not called for {retry_after} s",
                details={"reason": "circuit_open", "tool": tool, "retry_after_s": retry_after},
                headers={"Retry-After": str(retry_after)},
            )

    async def failure(self, tool: str) -> bool:
        """Counts one failure; True when this one opened the breaker."""
        opened = await self._record(
            keys=list(self._keys(tool)),
            args=[
                int(self.rule.window_s * 1000),
                self.rule.failures,
                int(self.rule.cooldown_s * 1000),
                uuid.uuid4().hex,
            ],
        )
        return bool(int(opened))

    async def success(self, tool: str) -> None:
        await self._close(keys=list(self._keys(tool)))

    async def is_open(self, tool: str) -> bool:
        return int(await self.redis.pttl(self._keys(tool)[1])) > 0
