"""Token-bucket rate limits in Redis, in their GCRA form: one key per bucket holding the
"theoretical arrival time", updated atomically by a Lua script on Redis's own clock, so every
function instance shares the bucket and no clock skew between them matters.

A bucket of `limit` per `period_s` holds at most `limit` tokens (the burst) and refills one token
every `period_s / limit` seconds. A refusal says when the next token is due (`Retry-After`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.platform.errors import RateLimited
from shared.platform.settings import Settings

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - burst * interval - now
if wait > 0 then return {0, tostring(wait)} end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1)
return {1, '0'}
"""


@dataclass(frozen=True)
class RateRule:
    name: str
    limit: int
    period_s: float

    @property
    def interval_s(self) -> float:
        return self.period_s / self.limit


def rules(settings: Settings) -> dict[str, RateRule]:
    """The named budgets routes refer to (defaults overridable in settings)."""
    return {
        rule.name: rule
        for rule in (
            RateRule("chat", settings.rate_chat_per_min, 60),
            RateRule("uploads", settings.rate_uploads_per_min, 60),
            RateRule("configops", settings.rate_configops_per_hour, 3600),
            RateRule("feedback", settings.rate_feedback_per_min, 60),
            RateRule("voice", settings.rate_voice_per_min, 60),
            RateRule("login_ip", settings.auth_login_ip_per_min, 60),
            # Account mail a user can trigger (verification resends, reset requests).
            RateRule("mail", 5, 3600),
            # Data rights (functions/account_data): exports are whole-account zips; deleting
            # checks a password, so its budget also bounds guessing with a stolen session.
            RateRule("export", 3, 3600),
            RateRule("account_delete", 10, 3600),
        )
    }


class RateLimiter:
    def __init__(self, redis: Any, *, prefix: str = "rate"):
        self.redis, self.prefix = redis, prefix
        self._script = redis.register_script(_GCRA)

    async def take(self, rule: RateRule, subject: str) -> float:
        """Take one token from `subject`'s bucket: 0.0, or the seconds until one is due."""
        key = f"{self.prefix}:{rule.name}:{subject}"
        allowed, wait = await self._script(keys=[key], args=[rule.interval_s, rule.limit])
        return 0.0 if int(allowed) else float(wait)

    async def enforce(self, rule: RateRule, subject: str) -> None:
        wait = await self.take(rule, subject)
        if wait > 0:
            raise RateLimited(
                f"rate limit reached: {rule.limit} per {_period(rule.period_s)}",
                retry_after_s=max(1, math.ceil(wait)),
                details={"limit": rule.name},
            )


def _period(seconds: float) -> str:
    return {60: "minute", 3600: "hour"}.get(int(seconds), f"{seconds:g} s")
