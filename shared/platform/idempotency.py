"""`Idempotency-Key` for side-effecting POSTs (DESIGN.md §5): the first request with
a key runs; a repeat within 24 h gets the stored answer; a repeat while the first is still
running gets 409 `in_flight`; the same key with a different body is refused (409
`key_reused`), as Stripe does, so a client bug cannot silently get someone else's answer.

Keys are scoped to the user and the route. A claim expires on its own (the `in_flight` TTL),
so a crashed run does not block the key for a day.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.platform.errors import Conflict, ValidationError

REPLAY_TTL_S = 24 * 3600
IN_FLIGHT_TTL_S = 600
MAX_KEY_LENGTH = 200


def fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    key: str
    fingerprint: str


class IdempotencyStore:
    def __init__(self, redis: Any, *, replay_ttl_s: int = REPLAY_TTL_S):
        self.redis, self.replay_ttl_s = redis, replay_ttl_s

    @staticmethod
    def _key(user_id: str, scope: str, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"idem:{scope}:{user_id}:{digest}"

    async def claim(
        self, user_id: str, scope: str, key: str, body: Any
    ) -> tuple[Claim | None, dict[str, Any] | None]:
        """(claim, None) when this request should run; (None, stored) to replay."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationError(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
        redis_key, print_ = self._key(user_id, scope, key), fingerprint(body)
        record = json.dumps({"state": "in_flight", "fingerprint": print_})
        if await self.redis.set(redis_key, record, nx=True, ex=IN_FLIGHT_TTL_S):
            return Claim(redis_key, print_), None
        raw = await self.redis.get(redis_key)
        if raw is None:  # expired between the two calls: take it now
            if await self.redis.set(redis_key, record, nx=True, ex=IN_FLIGHT_TTL_S):
                return Claim(redis_key, print_), None
            raw = await self.redis.get(redis_key) or record
        stored = json.loads(raw)
        if stored.get("fingerprint") != print_:
            raise Conflict(
                "this Idempotency-Key was used with a different request",
                details={"reason": "key_reused"},
            )
        if stored["state"] == "in_flight":
            raise Conflict(
                "a request with this Idempotency-Key is still running",
                details={"reason": "in_flight"},
                headers={"Retry-After": "2"},
            )
        return None, stored["response"]

    async def complete(self, claim: Claim, response: dict[str, Any]) -> None:
        record = {"state": "done", "fingerprint": claim.fingerprint, "response": response}
        await self.redis.set(claim.key, json.dumps(record, default=str), ex=self.replay_ttl_s)

    async def release(self, claim: Claim) -> None:
        """A run that failed before any side effect: the key may be used again at once."""
        await self.redis.delete(claim.key)

    async def once(
        self,
        user_id: str,
        scope: str,
        key: str | None,
        body: Any,
        run: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """`run()` under the key (no key: just `run()`): a repeat gets the stored answer, a
        failure frees the key. For handlers whose answer is one JSON object."""
        if key is None:
            return await run()
        claim, stored = await self.claim(user_id, scope, key, body)
        if stored is not None:
            return stored
        assert claim is not None
        try:
            answer = await run()
        except BaseException:
            await self.release(claim)
            raise
        await self.complete(claim, answer)
        return answer
