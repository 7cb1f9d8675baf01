"""The chat WebSocket function (DESIGN.md §1): API Gateway WebSocket events for `$connect`,
`$default` (every frame) and `$disconnect`, POSTed to `/events` (the Lambda Web Adapter's
pass-through path; the local gateway sends the same events), answered with the Lambda proxy
result `{"statusCode": N}`.

A frame on a socket with no live principal must be a valid auth frame (auth.py); any other
frame, a bad credential or a session that has ended gets an `error` frame, then the socket is
closed through the management API and the answer is 401. API Gateway cannot send a close code;
the local gateway reads the 401 of an unauthenticated socket's frame and closes it with 4401
instead (it holds that socket's frames until the answer, so the client sees the code alone).
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse, Response

from functions.chat_socket.auth import authenticate, remember_upgrade, signed_in
from functions.chat_socket.connections import Connections, ManagementApi
from functions.chat_socket.events import SocketEvent
from functions.chat_socket.frames import FRAMES, Socket
from functions.chat_socket.principals import SocketPrincipals
from shared.platform.errors import AppError
from shared.platform.runtime.outages import as_known_failure
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

log = logging.getLogger(__name__)


async def handle(event: SocketEvent, *, services: Services, connections: Connections) -> int:
    """One event; the status code API Gateway gets."""
    context = event.requestContext
    principals = SocketPrincipals(services.redis)
    if context.eventType == "CONNECT":
        await remember_upgrade(event, services, principals)
    elif context.eventType == "DISCONNECT":
        await principals.forget(context.connectionId)
    else:
        return await _message(event, services, connections, principals)
    return 200


async def _message(
    event: SocketEvent, services: Services, connections: Connections,
    principals: SocketPrincipals,
) -> int:  # fmt: skip
    connection_id = event.requestContext.connectionId
    unreadable: AppError | None = None
    try:
        frame = event.frame()
    except AppError as exc:  # not a JSON object: from a signed-in socket, an error frame
        frame, unreadable = {}, exc
    try:
        if frame.get("type") == "auth":
            principal = await authenticate(frame, connection_id, services, principals)
            await connections.send(connection_id, {"type": "auth_ok",
                                                   "user_id": principal.user_id})  # fmt: skip
            return 200
        principal = await signed_in(connection_id, services, principals)
    except Exception as exc:
        return await _refuse(connection_id, exc, connections, principals)
    socket = Socket(connection_id, principal, connections, services)
    if unreadable is not None:
        error = {"code": unreadable.code, "message": unreadable.message}
        await socket.send({"type": "error", "error": error})
        return 200
    handler = FRAMES.get(str(frame.get("type")))
    if handler is None:
        error = {"code": "validation_error", "message": "unknown frame type"}
        await socket.send({"type": "error", "error": error})
        return 200
    await handler(frame, socket)
    return 200


async def _refuse(
    connection_id: str, exc: Exception, connections: Connections, principals: SocketPrincipals
) -> int:
    """An `error` frame, then the socket is closed: 401 for a credential that proves nobody,
    503 when a store could not tell."""
    known = exc if isinstance(exc, AppError) else as_known_failure(exc)
    if known is None:
        raise exc
    log.info("socket refused", extra={"connection_id": connection_id, "code": known.code})
    error = {"code": known.code, "message": known.message}
    await connections.send(connection_id, {"type": "error", "error": error})
    await connections.close(connection_id)
    try:
        await principals.forget(connection_id)
    except Exception as failure:  # Redis down: the key expires with its credential anyway
        if as_known_failure(failure) is None:
            raise
    return 401 if known.status in (400, 401, 403) else known.status


async def events(call: Call[SocketEvent], *, services: Services) -> Response:
    connections = ManagementApi.for_event(call.body.requestContext, services.settings)
    status = await handle(call.body, services=services, connections=connections)
    return JSONResponse({"statusCode": status})  # the Lambda proxy result, not the envelope


ROUTES = RouteTable(
    "chat_socket",
    [
        Route("POST", "/events", events, "API Gateway WebSocket events ($connect, $default, "
              "$disconnect)", access=Access.INTERNAL, request_model=SocketEvent),
    ],
)  # fmt: skip
