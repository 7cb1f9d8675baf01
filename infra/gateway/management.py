"""The local stand-in for API Gateway's connection-management API: `POST`, `DELETE` and `GET
/{stage}/@connections/{connection_id}`, as boto3's `apigatewaymanagementapi` client calls them,
over the sockets this gateway holds. It listens on an ephemeral loopback port of its own (the
public listener may face the network; this one must not), started with the first socket.

Unauthenticated like the internal function host: only this machine reaches it. A connection
that is not open answers 410 `GoneException`, as in AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Protocol

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

_PATH = re.compile(r"/[^/]+/@connections/(?P<id>[^/]+)")


class Connection(Protocol):
    def info(self) -> dict[str, object]: ...

    async def post(self, data: bytes) -> bool: ...

    async def delete(self) -> None: ...


class ManagementApp:
    def __init__(self, connections: Mapping[str, Connection]):
        self.connections = connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self._answer(Request(scope, receive))
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        found = _PATH.fullmatch(request.url.path)
        if found is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        connection = self.connections.get(found["id"])
        if connection is None:
            return _gone()
        if request.method == "POST":
            return (
                Response(status_code=200)
                if await connection.post(await request.body())
                else _gone()
            )
        if request.method == "DELETE":
            await connection.delete()
            return Response(status_code=204)
        if request.method == "GET":
            return JSONResponse(connection.info())
        return JSONResponse({"message": "Method Not Allowed"}, status_code=405)


def _gone() -> Response:
    # What boto3 raises as `GoneException` (the header names the modelled error).
    return JSONResponse({"message": "Gone"}, status_code=410,
                        headers={"x-amzn-ErrorType": "GoneException"})  # fmt: skip


class _SecondServer(uvicorn.Server):
    """A second uvicorn server in the gateway's process: the gateway's own server handles
    SIGINT/SIGTERM and stops this one from its lifespan."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopbackListener:
    def __init__(self, app: ManagementApp):
        self.app = app
        self.port: int | None = None
        self._server: _SecondServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> int:
        async with self._lock:
            if self.port is None:
                self.port = await self._serve()
            return self.port

    async def _serve(self) -> int:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, lifespan="off",
                                log_config=None, access_log=False, ws="none")  # fmt: skip
        self._server = server = _SecondServer(config)
        self._task = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn sets it once the socket listens
            if self._task.done():
                await self._task  # raises why it could not start
                raise RuntimeError("the management API listener stopped at start")
            await asyncio.sleep(0.01)
        return int(server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server, self._task, self.port = None, None, None
