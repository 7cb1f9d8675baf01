"""The local stand-in for API Gateway's WebSocket APIs (template.yaml's `AWS::ApiGatewayV2::Api`
with ProtocolType WEBSOCKET): a socket at the API's `Metadata.LocalPath` gets a connection id,
and its upgrade, each frame and its end reach the route's function as the API Gateway events
`$connect`, `$default` (or the route the selection expression picks) and `$disconnect`, POSTed
to the function's `/events` as the Lambda Web Adapter would. The function answers frames through
the management API (management.py), as in AWS. Frames are handled concurrently: a `cancel` is
not stuck behind the turn it cancels.

What AWS cannot do and this gateway does (DESIGN.md §1): until the first frame is answered,
the socket's outgoing frames are held; a 401 answer closes the socket with 4401 instead of
sending the function's `error` frame (the close code says it), any other failure with 1011,
and a first frame that does not come within 10 s closes it with 4401 too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
import uuid
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from infra.gateway.management import LoopbackListener, ManagementApp
from shared.platform.template import WebSocketApi

log = logging.getLogger("gateway.sockets")
AUTH_FRAME_TIMEOUT_S = 10.0
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_ERROR, CLOSE_UNAUTHENTICATED = 1000, 1008, 1011, 4401


class LocalConnection:
    def __init__(self, socket: WebSocket):
        self.id = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()  # AWS-like ids
        self.socket, self.connected_at = socket, time.time()
        self.authenticated, self.close_requested, self.closed = False, False, False
        self.held: list[bytes] = []
        self._lock = asyncio.Lock()  # one send at a time on the socket

    def info(self) -> dict[str, object]:
        client = self.socket.client
        return {"connectedAt": _iso(self.connected_at), "lastActiveAt": _iso(time.time()),
                "identity": {"sourceIp": client.host if client else None,
                             "userAgent": self.socket.headers.get("user-agent")}}  # fmt: skip

    async def post(self, data: bytes) -> bool:
        if self.closed:
            return False
        if not self.authenticated:
            self.held.append(data)
            return True
        return await self._send(data)

    async def delete(self) -> None:
        if self.authenticated:
            await self.close(CLOSE_NORMAL)
        else:
            self.close_requested = True  # the first frame's answer picks the close code

    async def settle(self, status: int) -> None:
        """Applies the answer to the socket's first frame."""
        if not 200 <= status < 300:
            self.held.clear()
            await self.close(CLOSE_UNAUTHENTICATED if status == 401 else CLOSE_ERROR)
            return
        self.authenticated = True
        held, self.held = self.held, []
        for data in held:
            await self._send(data)
        if self.close_requested:
            await self.close(CLOSE_NORMAL)

    async def close(self, code: int) -> None:
        async with self._lock:
            if not self.closed:
                self.closed = True
                with contextlib.suppress(Exception):  # the client may be gone already
                    await self.socket.close(code=code)

    async def _send(self, data: bytes) -> bool:
        async with self._lock:
            if self.closed:
                return False
            try:
                await self._write(data)
            except Exception:  # the client went away mid-send
                self.closed = True
                return False
            return True

    async def _write(self, data: bytes) -> None:
        try:
            text = data.decode()
        except UnicodeDecodeError:  # not text: a binary frame, as API Gateway would send it
            await self.socket.send_bytes(data)
            return
        await self.socket.send_text(text)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class SocketGateway:
    def __init__(self, apis: dict[str, tuple[WebSocketApi, dict[str, ASGIApp]]]):
        """`apis`: by local path, each API with the function app of each route key."""
        self.apis = apis
        self.connections: dict[str, LocalConnection] = {}
        self.listener = LoopbackListener(ManagementApp(self.connections))
        self._frames: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        await self.listener.stop()

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        socket = WebSocket(scope, receive, send)
        if scope["path"] not in self.apis:
            await socket.close(code=CLOSE_POLICY)  # before accepting: the handshake is refused
            return
        api, apps = self.apis[scope["path"]]
        conn = LocalConnection(socket)
        domain = f"127.0.0.1:{await self.listener.start()}"
        call = _Caller(api, apps, conn, domain)
        if not 200 <= await call.event("$connect", "CONNECT", headers=_headers(scope)) < 300:
            await socket.close(code=CLOSE_POLICY)
            return
        self.connections[conn.id] = conn
        await socket.accept()
        try:
            await self._frames_of(conn, call)
        except WebSocketDisconnect:
            pass
        finally:
            self.connections.pop(conn.id, None)
            conn.closed = True
            await call.event("$disconnect", "DISCONNECT", headers=_headers(scope))

    async def _frames_of(self, conn: LocalConnection, call: _Caller) -> None:
        try:
            first = await asyncio.wait_for(_receive(conn.socket), AUTH_FRAME_TIMEOUT_S)
        except TimeoutError:
            await conn.close(CLOSE_UNAUTHENTICATED)
            return
        await conn.settle(await call.message(first))  # in order: the rest waits for auth
        while not conn.closed:
            frame = await _receive(conn.socket)
            task = asyncio.create_task(self._frame(call, frame))
            self._frames.add(task)  # a strong reference until it ends (it outlives the socket)
            task.add_done_callback(self._frames.discard)

    @staticmethod
    async def _frame(call: _Caller, frame: tuple[str, bool]) -> None:
        try:
            await call.message(frame)
        except Exception:
            log.exception("a socket frame failed", extra={"connection_id": call.conn.id})


async def _receive(socket: WebSocket) -> tuple[str, bool]:
    """The next frame as an event body: (text, False), or (base64 of binary, True)."""
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
    if message.get("text") is not None:
        return message["text"], False
    return base64.b64encode(message.get("bytes") or b"").decode(), True


def _headers(scope: Scope) -> dict[str, str]:
    """The upgrade's headers as API Gateway passes them to `$connect` (and `$disconnect`)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        joiner = "; " if name == "cookie" else ", "
        headers[name] = f"{headers[name]}{joiner}{value}" if name in headers else value
    client = scope.get("client")
    headers["x-forwarded-proto"] = "https" if scope.get("scheme") == "wss" else "http"
    headers["x-forwarded-for"] = client[0] if client else "127.0.0.1"
    return headers


class _Caller:
    """Sends one connection's events to its API's functions, as API Gateway invokes them."""

    def __init__(self, api: WebSocketApi, apps: dict[str, ASGIApp], conn: LocalConnection,
                 domain: str):  # fmt: skip
        self.api, self.apps, self.conn, self.domain = api, apps, conn, domain

    def route_key(self, body: str) -> str:
        """The route the API's `$request.body.<field>` selection expression picks."""
        field = self.api.route_selection_expression.removeprefix("$request.body.")
        with contextlib.suppress(ValueError, AttributeError):
            value = json.loads(body)
            for part in field.split("."):
                value = value.get(part)
            if isinstance(value, str) and not value.startswith("$") and value in self.apps:
                return value
        return "$default"

    async def message(self, frame: tuple[str, bool]) -> int:
        body, binary = frame
        route = "$default" if binary else self.route_key(body)
        return await self.event(route, "MESSAGE", body=body, binary=binary)

    async def event(self, route_key: str, kind: str, *, headers: dict[str, str] | None = None,
                    body: str | None = None, binary: bool = False) -> int:  # fmt: skip
        """The status code the route's function answers (200 when the API has no such route,
        as API Gateway accepts a socket with no $connect route)."""
        app = self.apps.get(route_key)
        if app is None:
            return 200
        request_id = str(uuid.uuid4())
        context = {"routeKey": route_key, "eventType": kind, "connectionId": self.conn.id,
                   "domainName": self.domain, "stage": self.api.stage, "apiId": "local",
                   "requestId": request_id, "messageDirection": "IN",
                   "connectedAt": int(self.conn.connected_at * 1000),
                   "requestTimeEpoch": int(time.time() * 1000)}  # fmt: skip
        event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": binary}
        if headers is not None:
            event["headers"] = headers
        if body is not None:
            event["body"] = body
        # In process, as the gateway mounts HTTP functions; the ASGI transport has no timeouts
        # (a chat_start event lasts as long as its turn, as the Lambda invocation does).
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as client:
            answer = await client.post("/events", json=event, headers={"x-request-id": request_id})
        if answer.status_code != 200:
            return answer.status_code
        status = answer.json().get("statusCode")
        return status if isinstance(status, int) else 500
