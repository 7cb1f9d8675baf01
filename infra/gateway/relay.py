"""The WebSocket chat relay (DESIGN.md §1): a `chat_start` frame becomes a `POST /v1/chat`
with `stream: true` through the gateway's own routing (so the chat function sees the same
request as over SSE, auth and rate limits included), and each SSE event it streams back goes
out as a `{event, data, request_id}` frame; a `cancel` frame becomes `POST /v1/chat/cancel`.

The socket's credentials go with every call (the bearer token of the auth frame, or the
upgrade's cookie and origin), so a session revoked mid-socket cannot start another turn.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Scope

Frame = Callable[[dict[str, Any]], Awaitable[None]]


def _headers(credentials: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"x-request-id", request_id.encode()),
        *credentials,
    ]


def credentials_of(scope: Scope, token: str | None) -> list[tuple[bytes, bytes]]:
    """What authenticates the relayed calls: the auth frame's token, else the socket's cookie
    with its origin (checked again by the chat function, as for any cookie write)."""
    if token:
        return [(b"authorization", f"Bearer {token}".encode())]
    keep = {b"cookie", b"origin", b"referer"}
    return [(k, v) for k, v in scope.get("headers", []) if k.lower() in keep]


class SseParser:
    """Incremental `text/event-stream` parsing: bytes in, (event, data) pairs out."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        self.buffer += chunk
        events = []
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            event, data = "message", []
            for line in block.decode().splitlines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
            events.append((event, json.loads("\n".join(data)) if data else None))
        return events


async def call(
    app: ASGIApp,
    ws_scope: Scope,
    *,
    path: str,
    body: dict[str, Any],
    credentials: list[tuple[bytes, bytes]],
    request_id: str,
    on_chunk: Callable[[int, bytes], Awaitable[None]],
) -> None:
    """One HTTP request through `app`, its response body handed over chunk by chunk."""
    payload = json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https" if ws_scope.get("scheme") == "wss" else "http", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": _headers(credentials, request_id), "client": ws_scope.get("client"),
        "server": ws_scope.get("server"),
    }  # fmt: skip
    sent, status = False, 500

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            # A streaming response listens for the client going away; ours stays until the
            # response ends (the relay task is cancelled if the socket's server stops).
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            await on_chunk(status, message.get("body", b""))

    await app(scope, receive, send)


async def relay_chat(
    app: ASGIApp, ws_scope: Scope, frame: dict[str, Any], *, token: str | None, out: Frame
) -> None:
    """Runs one turn for a `chat_start` frame, sending its events as frames."""
    request_id = str(uuid.uuid4())
    body = {k: v for k, v in frame.items() if k != "type"} | {"stream": True}
    parser, error_body = SseParser(), b""

    async def on_chunk(status: int, chunk: bytes) -> None:
        nonlocal error_body
        if status != 200:
            error_body += chunk
            return
        for event, data in parser.feed(chunk):
            await out({"event": event, "data": data, "request_id": request_id})

    await call(app, ws_scope, path="/v1/chat", body=body, request_id=request_id,
               credentials=credentials_of(ws_scope, token), on_chunk=on_chunk)  # fmt: skip
    if error_body:
        try:
            error = json.loads(error_body)["error"]
        except (ValueError, KeyError):
            error = {"code": "server_error", "message": "the chat call failed"}
        await out({"event": "error", "data": error, "request_id": request_id})


async def relay_cancel(
    app: ASGIApp, ws_scope: Scope, frame: dict[str, Any], *, token: str | None, out: Frame
) -> None:
    request_id = str(frame.get("request_id") or "")
    answer = b""

    async def on_chunk(status: int, chunk: bytes) -> None:
        nonlocal answer
        answer += chunk

    await call(app, ws_scope, path="/v1/chat/cancel", body={"request_id": request_id},
               request_id=str(uuid.uuid4()), credentials=credentials_of(ws_scope, token),
               on_chunk=on_chunk)  # fmt: skip
    try:
        envelope = json.loads(answer)
    except ValueError:
        envelope = {"status": "error", "error": {"code": "server_error", "message": "no answer"}}
    if envelope.get("status") != "ok":
        await out({"event": "error", "data": envelope.get("error"), "request_id": request_id})
