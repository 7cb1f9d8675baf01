"""A function's ASGI app: its `ROUTES` table served with the process's services. The local
gateway mounts one per function (all sharing one set of services); on Lambda, the Web Adapter
runs `lambda_app` (run.sh), one function per process."""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from shared.platform.runtime.routes import RouteTable

# No route has control characters, so none names anything (the gateway answers them 404).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(path: str) -> bool:
    return _CONTROL.search(path) is not None


class FunctionApp:
    """Every HTTP request goes to the route table, which answers in the envelope whatever
    happens (no route, a bad path, an error)."""

    def __init__(self, routes: RouteTable, services: Any):
        self.routes, self.services = routes, services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = await self.routes.dispatch(Request(scope, receive), self.services)
        await response(scope, receive, send)


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answers the server's startup and shutdown (nothing to set up: services connect lazily)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def routes_of(module: ModuleType | str) -> RouteTable:
    if isinstance(module, str):
        module = importlib.import_module(module)
    routes = getattr(module, "ROUTES", None)
    if not isinstance(routes, RouteTable):
        raise TypeError(f"{module.__name__} has no ROUTES table")
    return routes


def function_app(module: ModuleType | str, services: Any) -> FunctionApp:
    return FunctionApp(routes_of(module), services)
