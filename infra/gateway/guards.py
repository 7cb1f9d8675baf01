"""What the gateway itself guards: the admin bundle (served to admins only) and WebSockets,
whose first frame must be the API contract's `{"type": "auth", "session": "<session id or bearer
token>"}` (browsers cannot set headers on a WebSocket); anything else closes the socket with
4401 (DESIGN.md §1).

`session` holds an access token (`token` is accepted as its older name), or a session id. A
session id is no credential by itself (ids are listed, logged, shown): it counts only with the
HttpOnly access cookie of that same session, sent with the upgrade from an allowed origin. With
neither field, the cookie alone authenticates (from an allowed origin).

After the auth frame: `ping` → `pong`; `chat_start` (a `POST /v1/chat` body) runs a turn
whose events come back as `{event, data, request_id}` frames; `cancel` with a `request_id`
stops one (infra/gateway/relay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from infra.gateway.relay import relay_cancel, relay_chat
from shared.platform.auth.perimeter import (
    ACCESS_COOKIE,
    authenticate,
    check_origin,
    principal_from_token,
)
from shared.platform.auth.tokens import Principal
from shared.platform.clients import Clients
from shared.platform.errors import AppError, Forbidden, Unauthorized

ADMIN_PREFIX = "/admin"
WEBSOCKET_PATHS = frozenset({"/v1/chat/stream"})
AUTH_FRAME_TIMEOUT_S = 10.0
CLOSE_UNAUTHENTICATED = 4401


def is_admin_asset(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


async def admin_refusal(scope: Scope, clients: Clients) -> AppError | None:
    """None for an admin (bearer or cookie); otherwise the 401/403 to answer."""
    try:
        principal = await authenticate(Request(scope), clients)
    except AppError as exc:
        return exc
    return None if principal.is_admin else Forbidden("the admin pages need the admin role")


async def serve_websocket(
    scope: Scope, receive: Receive, send: Send, *, app: ASGIApp, clients: Clients
) -> None:
    socket = WebSocket(scope, receive, send)
    if scope["path"] not in WEBSOCKET_PATHS:
        await socket.close(code=1008, reason="no WebSocket route here")  # refused handshake
        return
    await socket.accept()
    try:
        first = await asyncio.wait_for(socket.receive_text(), AUTH_FRAME_TIMEOUT_S)
        frame = json.loads(first)
        if not isinstance(frame, dict) or frame.get("type") != "auth":
            raise ValueError("the first frame must be {type: auth}")
        principal, token = await _authenticate_socket(socket, frame, clients)
    except WebSocketDisconnect:
        return
    except (TimeoutError, ValueError, AppError):
        await socket.close(code=CLOSE_UNAUTHENTICATED, reason="authentication required")
        return
    await socket.send_json({"type": "auth_ok", "user_id": principal.user_id})
    await _serve_frames(socket, scope, app, token=token)


def _session_id(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def _authenticate_socket(
    socket: WebSocket, frame: dict[str, Any], clients: Clients
) -> tuple[Principal, str | None]:
    """The socket's principal, and the bearer token its relayed calls carry (None: they carry
    the upgrade's cookie and origin instead)."""
    given = frame.get("session") or frame.get("token")
    if given is not None and (not isinstance(given, str) or not given):
        raise ValueError("session must be a string")
    session_id = _session_id(given) if given else None
    if given and session_id is None:
        return await principal_from_token(clients, given), given  # a bearer access token
    # The session cookie sent with the upgrade, then only from an allowed origin (cross-site
    # WebSocket hijacking); a session id in the frame must name the cookie's own session.
    check_origin(clients.settings, socket, always=True)
    cookie = socket.cookies.get(ACCESS_COOKIE)
    if not cookie:
        raise ValueError("no credential: a bearer token, or the session cookie")
    principal = await principal_from_token(clients, cookie)
    if session_id is not None and principal.session_id != session_id:
        raise Unauthorized("the session id is not this cookie's session")
    return principal, None


async def _serve_frames(
    socket: WebSocket, scope: Scope, app: ASGIApp, *, token: str | None
) -> None:
    lock, turns = asyncio.Lock(), set()

    async def out(frame: dict[str, Any]) -> None:
        async with lock:
            with contextlib.suppress(Exception):  # the client left: the turn goes on regardless
                await socket.send_json(frame)

    try:
        while True:
            message = json.loads(await socket.receive_text())
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "ping":
                await out({"type": "pong"})
            elif kind in ("chat_start", "cancel"):
                relay = relay_chat if kind == "chat_start" else relay_cancel
                task = asyncio.create_task(relay(app, scope, message, token=token, out=out))
                turns.add(task)
                task.add_done_callback(turns.discard)
            else:
                await out(
                    {
                        "type": "error",
                        "error": {"code": "validation_error", "message": "unknown frame type"},
                    }
                )
    except (WebSocketDisconnect, ValueError):
        return
