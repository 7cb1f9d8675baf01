"""Single-use tokens in Redis (email verification, password reset, the MFA login ticket): the
client holds a random token, Redis keeps only its digest -> the user id (or, for a ticket, a small
JSON record) with a TTL, and redeeming deletes it atomically (GETDEL), so a token works once even
when two requests race."""

from __future__ import annotations

import secrets
from typing import Any

from shared.platform.auth.tokens import digest
from shared.platform.errors import ValidationError

PURPOSES = frozenset({"verify_email", "password_reset", "mfa_login"})


class OneTimeTokens:
    def __init__(self, redis: Any):
        self.redis = redis

    @staticmethod
    def _key(purpose: str, token: str) -> str:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        return f"auth:{purpose}:{digest(token)}"

    async def issue(self, purpose: str, value: str, *, ttl_s: int) -> str:
        """A new token standing for `value` (a user id) for `ttl_s` seconds."""
        token = secrets.token_urlsafe(32)
        await self.redis.set(self._key(purpose, token), value, ex=ttl_s)
        return token

    async def peek(self, purpose: str, token: str) -> str:
        """The user id, without spending the token."""
        return _user_id(await self.redis.get(self._key(purpose, token)))

    async def redeem(self, purpose: str, token: str) -> str:
        """The user id the token was issued for; the token is spent. Unknown, used and expired
        tokens are one error."""
        return _user_id(await self.redis.getdel(self._key(purpose, token)))


def _user_id(stored: Any) -> str:
    if stored is None:
        raise ValidationError("this link is invalid or has expired; ask for a new one")
    return stored.decode() if isinstance(stored, bytes) else str(stored)
