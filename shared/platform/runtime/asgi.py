"""A function's ASGI app: its `ROUTES` table served with the process's services. The local
gateway mounts one per function (all sharing one set of services); on Lambda, the Web Adapter
runs `lambda_app` (run.sh), one function per process."""

from __future__ import annotations

import importlib
import re
import time
from types import ModuleType
from typing import Any

from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from shared.platform import emf
from shared.platform.errors import AppError
from shared.platform.runtime.routes import Access, RouteTable
from shared.platform.tracing import context_from, has_current_span, ids, mark_error, span

# No route has control characters, so none names anything (the gateway answers them 404).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(path: str) -> bool:
    return _CONTROL.search(path) is not None


class FunctionApp:
    """Every HTTP request goes to the route table, which answers in the envelope whatever
    happens (no route, a bad path, an error). Each call is a span (a child of the gateway's in
    the local gateway, else of the caller's `traceparent`) and, in Lambda, an EMF line."""

    def __init__(self, routes: RouteTable, services: Any):
        self.routes, self.services = routes, services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route, is_event = self._route_of(scope)
        status: dict[str, int] = {}
        first_byte: list[float] = []

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body" and not first_byte:
                first_byte.append(time.perf_counter())
            await send(message)

        local = has_current_span()  # mounted in the gateway, which opened the request's span
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        started = time.perf_counter()
        with span(
            f"{self.routes.function_name} {scope['method']} {route}",
            kind=SpanKind.INTERNAL if local else SpanKind.SERVER,
            parent=None if local else context_from(headers),
            attributes={"faas.name": self.routes.function_name, "http.route": route},
        ) as current:
            try:
                response = await self.routes.dispatch(Request(scope, receive), self.services)
                await response(scope, receive, send_noting_status)
            finally:
                code = status.get("code")
                current.set_attribute("http.response.status_code", code or 500)
                if (code or 500) >= 500:
                    mark_error(current, f"answered {code}")
                # An HTTP route's latency is to its answer's first byte (a stream's first
                # event), an event's duration to its end.
                ended = first_byte[0] if first_byte and not is_event else time.perf_counter()
                emf.emit_request(
                    function=self.routes.function_name, route=route, status=code,
                    duration_ms=(ended - started) * 1000, event=is_event, trace_id=ids()[0],
                )  # fmt: skip

    def _route_of(self, scope: Scope) -> tuple[str, bool]:
        """(the route template the request matches, whether it is an event delivery); a
        request no route takes is "unmatched", so metrics never carry a raw path."""
        try:
            route, _ = self.routes.find(scope["method"], scope["path"])
        except AppError:
            return "unmatched", False
        return route.path, route.access is Access.INTERNAL


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
