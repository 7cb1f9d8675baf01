"""Authenticating a socket (DESIGN.md §1): browsers cannot set headers on a
WebSocket, so the first frame must be `{"type": "auth", "session": "<token or session id>"}`.

`session` holds an access token (`token` is its older name), or a session id. A session id is
no credential by itself (ids are listed, logged, shown): it counts only with the HttpOnly
access cookie of that same session, sent with the upgrade from an allowed origin. With neither
field, the cookie alone authenticates (from an allowed origin: cross-site WebSocket hijacking).
"""

from __future__ import annotations

import time
import uuid

import jwt
import pydantic
from starlette.requests import HTTPConnection

from functions.chat_socket.events import AuthFrame, SocketEvent
from functions.chat_socket.principals import SocketPrincipals
from shared.platform.auth.perimeter import (
    ACCESS_COOKIE,
    check_origin,
    principal_from_token,
    sessions,
)
from shared.platform.auth.tokens import Principal
from shared.platform.clients import Clients
from shared.platform.errors import AppError, Unauthorized


def _seconds_left(token: str) -> int:
    """The remaining life of an access token `principal_from_token` has just verified."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return int(claims["exp"] - time.time())


def _upgrade(event: SocketEvent) -> HTTPConnection:
    """The upgrade request as Starlette sees one, from the `$connect` event's headers."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in (event.headers or {}).items()]  # fmt: skip
    scheme = (event.header("x-forwarded-proto") or "https").lower()
    return HTTPConnection({"type": "http", "scheme": scheme, "path": "/", "headers": headers,
                           "query_string": b"", "server": None, "method": "GET"})  # fmt: skip


async def remember_upgrade(
    event: SocketEvent, clients: Clients, principals: SocketPrincipals
) -> None:
    """`$connect`: keeps the principal of the upgrade's session cookie when it came from an
    allowed origin. Nothing is refused here: the auth frame may bring a bearer token."""
    upgrade = _upgrade(event)
    cookie = upgrade.cookies.get(ACCESS_COOKIE)
    if not cookie:
        return
    try:
        check_origin(clients.settings, upgrade, always=True)
        principal = await principal_from_token(clients, cookie)
    except AppError:
        return
    connection_id = event.requestContext.connectionId
    await principals.remember(connection_id, principal, ttl_s=_seconds_left(cookie), upgrade=True)


def _session_id(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def authenticate(
    frame: dict[str, object], connection_id: str, clients: Clients, principals: SocketPrincipals
) -> Principal:
    """Checks an auth frame and remembers the socket's principal; 401 (Unauthorized) when it
    proves nobody."""
    try:
        given = AuthFrame.model_validate(frame).credential
    except pydantic.ValidationError:
        raise Unauthorized('the auth frame is {"type": "auth", "session": "<token>"}') from None
    session_id = _session_id(given) if given else None
    if given and session_id is None:  # a bearer access token
        principal = await principal_from_token(clients, given)
        ttl_s = _seconds_left(given)
    else:
        remembered = await principals.recall(connection_id, upgrade=True)
        if remembered is None:
            raise Unauthorized("no credential: a bearer token, or the session cookie")
        principal, ttl_s = remembered
        if session_id is not None and principal.session_id != session_id:
            raise Unauthorized("the session id is not this cookie's session")
        if not await sessions(clients).is_active(principal):
            raise Unauthorized("the session has ended; log in again")
    await principals.remember(connection_id, principal, ttl_s=ttl_s)
    return principal


async def signed_in(
    connection_id: str, clients: Clients, principals: SocketPrincipals
) -> Principal:
    """The socket's principal for any other frame, its session checked again (a session
    revoked mid-socket cannot start another turn)."""
    remembered = await principals.recall(connection_id)
    if remembered is None:
        raise Unauthorized('authenticate first: {"type": "auth", "session": "<token>"}')
    principal, _ = remembered
    if not await sessions(clients).is_active(principal):
        raise Unauthorized("the session has ended; log in again")
    return principal
