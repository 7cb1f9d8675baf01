"""Who is calling, and may they: the access token of an active session, from the
`Authorization: Bearer` header or from the HttpOnly access cookie (cookie mode). Headers such as
`X-User-Id` are never read.

Cookies ride along on cross-site requests, so a state-changing request authenticated by cookie
must also carry an `Origin` (or `Referer`) that is the gateway's own or in CORS_ALLOW_ORIGINS
(CSRF defence on top of SameSite). Bearer tokens are never sent by a browser on its own, so
they need no such check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request

from shared.platform.audit import Actor
from shared.platform.auth.sessions import Sessions
from shared.platform.auth.tokens import Principal, decode_access
from shared.platform.clients import Clients
from shared.platform.errors import Forbidden, Unauthorized
from shared.platform.limits.rate import RateLimiter, rules
from shared.platform.settings import Settings

ACCESS_COOKIE, REFRESH_COOKIE = "acs_access", "acs_refresh"
REFRESH_COOKIE_PATH = "/v1/auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token(request: HTTPConnection) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _origin(request: HTTPConnection) -> str | None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.rstrip("/")
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
    return None


def allowed_origins(settings: Settings, request: HTTPConnection) -> set[str]:
    scheme = {"ws": "http", "wss": "https"}.get(request.url.scheme, request.url.scheme)
    own = f"{scheme}://{request.headers.get('host', request.url.netloc)}"
    return {own, settings.public_url, *(o.rstrip("/") for o in settings.cors_allow_origins)}


def check_origin(settings: Settings, request: HTTPConnection, *, always: bool = False) -> None:
    """Refuses a cookie-authenticated state change that a cross-site page could have sent
    (`always`: for WebSockets, which are not covered by SameSite nor CORS)."""
    if not always and request.scope.get("method", "GET") in SAFE_METHODS:
        return
    origin = _origin(request)
    if origin is None or origin not in allowed_origins(settings, request):
        raise Forbidden("cross-site request refused (Origin not allowed)")


def client_of(request: HTTPConnection, user_id: str | None = None) -> Actor:
    client = request.client
    return Actor(
        user_id=user_id,
        ip=client.host if client else None,
        # Stored in sessions and the audit log: NUL is the one character Postgres text refuses.
        user_agent=request.headers.get("user-agent", "").replace("\x00", "") or None,
    )


def sessions(clients: Clients) -> Sessions:
    return Sessions(clients.settings, clients.db, clients.redis)


async def principal_from_token(clients: Clients, token: str) -> Principal:
    principal = decode_access(clients.settings, token)
    if not await sessions(clients).is_active(principal):
        raise Unauthorized("the session has ended; log in again")
    return principal


async def authenticate(request: HTTPConnection, clients: Clients) -> Principal:
    token = bearer_token(request)
    if token is None:
        token = request.cookies.get(ACCESS_COOKIE)
        if not token:
            raise Unauthorized("a bearer access token or the session cookie is required")
        check_origin(clients.settings, request)
    return await principal_from_token(clients, token)


async def rate_limit(
    rule: str, request: Request, principal: Principal | None, clients: Clients
) -> None:
    """Per user when authenticated, per client IP otherwise."""
    subject = principal.user_id if principal else f"ip:{client_of(request).ip or 'unknown'}"
    await RateLimiter(clients.redis).enforce(rules(clients.settings)[rule], subject)


def perimeter() -> dict[str, Any]:
    """The keyword arguments every public function's RouteTable takes."""
    return {"authenticate": authenticate, "rate_limit": rate_limit}
