"""Access tokens: short-lived JWTs (pyjwt), HS256 pinned, `kid` naming the signing key so keys
rotate; refresh tokens: opaque random strings stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from shared.platform.errors import Unauthorized
from shared.platform.settings import Settings

ALGORITHM = "HS256"
AUDIENCE = "api"


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    session_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def issue_access(settings: Settings, principal: Principal, *, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": principal.user_id,
        "role": principal.role,
        "sid": principal.session_id,
        "iss": settings.auth_issuer,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + settings.auth_access_ttl_s,
        "jti": uuid.uuid4().hex,
    }
    key = settings.auth_jwt_secret.get_secret_value()
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": settings.auth_jwt_kid})


def _keys(settings: Settings) -> dict[str, str]:
    keys = {kid: key.get_secret_value() for kid, key in settings.auth_jwt_previous_keys.items()}
    keys[settings.auth_jwt_kid] = settings.auth_jwt_secret.get_secret_value()
    return keys


def decode_access(settings: Settings, token: str) -> Principal:
    """The token's principal; any defect (expired, tampered, unknown key, another algorithm,
    `alg: none`, missing claims) is the same 401, so a caller learns nothing from it."""
    try:
        header = jwt.get_unverified_header(token)
        key = _keys(settings).get(str(header.get("kid")))
        if key is None:
            raise jwt.InvalidTokenError("unknown key id")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],  # pinned: `alg: none` and every other algorithm refused
            audience=AUDIENCE,
            issuer=settings.auth_issuer,
            options={"require": ["exp", "iat", "sub", "sid", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid or expired access token") from exc
    return Principal(user_id=claims["sub"], role=claims["role"], session_id=claims["sid"])


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, digest to store)."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    # surrogatepass: whatever string a client sent has a digest (it just matches nothing).
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality for any input: `hmac.compare_digest` raises TypeError on str
    with non-ASCII characters, so both sides are compared as bytes."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
