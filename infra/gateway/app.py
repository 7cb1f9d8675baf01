"""Two ASGI apps built from template.yaml.

- `public_app`: the API Gateway stand-in. Each HTTP function is imported as a package and
  mounted at exactly the (method, path) pairs of its `Api` events; responses stream through
  untouched (SSE); each WebSocket API is served at its `LocalPath` (sockets.py); the static
  site (`Metadata.StaticSite`: the web app's build) is served for other GETs, behind its
  declared guards, with the SPA fallback and its security headers (static.py); anything
  else is a 404 envelope. Queue and scheduled functions are not reachable here.
- `internal_app`: the Lambda Web Adapter stand-in for queue/scheduled functions, on a
  loopback port only the dispatcher calls: `POST /functions/<LogicalId>/events` reaches the
  function as `POST /events`, the adapter's pass-through path. A function whose template
  entry names a `Metadata.LocalHost` (the train function) is served by a host of its own
  (`only`), never by the shared one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.gateway.guards import refusal
from infra.gateway.sockets import SocketGateway
from infra.gateway.static import SiteServer, security_headers
from shared.platform.context import (
    REQUEST_ID_HEADER,
    new_request_id,
    reset_request_id,
    set_request_id,
)
from shared.platform.metrics import bearer_allowed, metrics_response, observe_request
from shared.platform.runtime.asgi import function_app
from shared.platform.runtime.envelope import error_body
from shared.platform.runtime.routes import compile_path
from shared.platform.settings import Settings
from shared.platform.template import StaticSite, Template
from shared.platform.tracing import context_from, link_to, mark_error, span
from shared.services import Services

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class MountedRoute:
    method: str
    path: str
    pattern: re.Pattern[str]
    function: str
    app: ASGIApp


def _header_items(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]


def _with_request_id(scope: Scope) -> tuple[Scope, str]:
    headers = [(k, v) for k, v in scope.get("headers", []) if k != REQUEST_ID_HEADER.encode()]
    given = dict(scope.get("headers", [])).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
    request_id = new_request_id(given or None)
    headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
    return {**scope, "headers": headers}, request_id


async def _envelope(
    send: Send, scope: Scope, status: int, code: str, message: str, request_id: str
) -> None:
    token = set_request_id(request_id)
    try:
        response = JSONResponse(
            error_body(code, message), status_code=status, headers={REQUEST_ID_HEADER: request_id}
        )
    finally:
        reset_request_id(token)

    async def no_body() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await response(scope, no_body, send)


class PublicGateway:
    def __init__(
        self, routes: list[MountedRoute], sockets: SocketGateway, site: StaticSite | None,
        services: Services,
    ):  # fmt: skip
        self.routes, self.sockets, self.site, self.services = routes, sockets, site, services
        self.static = (
            SiteServer(
                site,
                security_headers(services.settings.content_security_policy),
                lambda guard, scope: refusal(guard, scope, services),
            )
            if site
            else None
        )

    def match(self, method: str, path: str) -> tuple[MountedRoute | None, bool]:
        """(route, path_known): path_known means some route has this path (405, not 404)."""
        path_known = False
        for route in self.routes:
            if route.pattern.match(path):
                if route.method == method or (method == "HEAD" and route.method == "GET"):
                    return route, True
                path_known = True
        return None, path_known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, on_shutdown=self.sockets.aclose)
            return
        if scope["type"] == "websocket":
            await self.sockets.serve(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        scope, request_id = _with_request_id(scope)
        if scope["path"] == "/metrics" and await self._metrics(scope, receive, send):
            return
        started = time.perf_counter()
        status_holder: dict[str, int] = {}
        timing: dict[str, float] = {}

        async def send_logged(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body" and "first_byte" not in timing:
                timing["first_byte"] = time.perf_counter() - started
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == REQUEST_ID_HEADER.encode() for k, _ in headers):
                    headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        route, path_known = self.match(scope["method"], scope["path"])
        # Metrics and span names carry the route template, never the raw path (bounded).
        site = "static" if self.static and not path_known else "unmatched"
        label = route.path if route else site
        # The public edge starts its own trace: a client's `traceparent` is only linked, so
        # outsiders cannot choose the trace ids of our work.
        client_link = link_to(dict(_header_items(scope)).get("traceparent"))
        with span(
            f"{scope['method']} {label}",
            kind=SpanKind.SERVER,
            parent=context_from({}),
            links=[client_link] if client_link else None,
            attributes={"http.request.method": scope["method"], "http.route": label,
                        "faas.name": route.function if route else "", "request_id": request_id},
        ) as current:  # fmt: skip
            try:
                await self._route(scope, receive, send_logged, route, path_known, request_id)
            finally:
                status = status_holder.get("status")
                current.set_attribute("http.response.status_code", status or 500)
                if (status or 500) >= 500:
                    mark_error(current, f"answered {status}")
                duration_s = time.perf_counter() - started
                observe_request(route.function if route else "-", label, scope["method"],
                                status, duration_s, timing.get("first_byte"))  # fmt: skip
                token = set_request_id(request_id)
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "function": route.function if route else None,
                        "duration_ms": round(duration_s * 1000, 1),
                    },
                )
                reset_request_id(token)

    async def _route(
        self, scope: Scope, receive: Receive, send_logged: Send, route: MountedRoute | None,
        path_known: bool, request_id: str,
    ) -> None:  # fmt: skip
        if route is not None:
            await route.app(scope, receive, send_logged)
        elif path_known:
            await _envelope(
                send_logged,
                scope,
                405,
                "method_not_allowed",
                f"{scope['method']} is not allowed on {scope['path']}",
                request_id,
            )
        elif await self._static(scope, receive, send_logged, request_id):
            pass
        else:
            await _envelope(
                send_logged,
                scope,
                404,
                "not_found",
                f"no route for {scope['method']} {scope['path']}",
                request_id,
            )

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """`GET /metrics` for a bearer of METRICS_TOKEN; False (the request goes on to the
        routes, the site or the 404) for anyone else, so the path reveals nothing."""
        token = self.services.settings.metrics_token
        authorization = dict(_header_items(scope)).get("authorization")
        if scope["method"] != "GET" or not bearer_allowed(
            authorization, token.get_secret_value() if token else None
        ):
            return False
        await metrics_response()(scope, receive, send)
        return True

    async def _static(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> bool:
        if self.static is None:
            return False

        async def envelope(to: Send, scope: Scope, status: int, code: str, message: str) -> None:
            await _envelope(to, scope, status, code, message, request_id)

        return await self.static.serve(scope, receive, send, envelope)


class InternalFunctions:
    """The loopback host of queue and scheduled functions; also serves the process's metrics
    at `GET /metrics` (loopback only, so no token)."""

    def __init__(self, apps: Mapping[str, ASGIApp]):
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        scope, request_id = _with_request_id(scope)
        if scope["path"] == "/metrics" and scope["method"] == "GET":
            await metrics_response()(scope, receive, send)
            return
        parts = scope["path"].split("/")
        # /functions/<LogicalId>/events
        if (
            len(parts) == 4
            and parts[1] == "functions"
            and parts[3] == "events"
            and parts[2] in self.apps
        ):
            await self._deliver(parts[2], scope, receive, send)
            return
        await _envelope(
            send, scope, 404, "not_found", f"no internal function at {scope['path']}", request_id
        )

    async def _deliver(self, function: str, scope: Scope, receive: Receive, send: Send) -> None:
        status: dict[str, int] = {}

        async def send_noting_status(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.apps[function](
                {**scope, "path": "/events", "raw_path": b"/events"}, receive, send_noting_status
            )
        finally:
            observe_request(function, "/events", scope["method"], status.get("code"),
                            time.perf_counter() - started)  # fmt: skip


async def _lifespan(
    receive: Receive, send: Send, *, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def mounted_routes(template: Template, services: Services) -> list[MountedRoute]:
    routes = []
    for spec in template.functions.values():
        if not spec.http:
            continue
        app = function_app(spec.module, services)
        for event in spec.http:
            routes.append(
                MountedRoute(
                    event.method,
                    event.path,
                    compile_path(event.path),
                    spec.logical_id,
                    app,
                )
            )
    return routes


def socket_gateway(template: Template, services: Services) -> SocketGateway:
    """Each WebSocket API of the template at its local path, with its routes' functions."""
    apps: dict[str, ASGIApp] = {}  # one app per function, whatever the number of its routes
    apis = {}
    for api in template.websockets.values():
        routes = {}
        for route_key, function in api.routes:
            if function not in apps:
                apps[function] = function_app(template.functions[function].module, services)
            routes[route_key] = apps[function]
        apis[api.local_path] = (api, routes)
    return SocketGateway(apis)


def public_app(
    settings: Settings,
    *,
    services: Services | None = None,
    template: Template | None = None,
) -> ASGIApp:
    """Every HTTP and WebSocket function of the template in this process, sharing one
    `Services` (built from `settings` unless given)."""
    services = services or Services.from_settings(settings, template=template)
    template = template or services.template
    app: ASGIApp = PublicGateway(
        mounted_routes(template, services), socket_gateway(template, services),
        template.static_site, services,
    )  # fmt: skip
    if settings.cors_allow_origins:
        app = CORSMiddleware(
            app,
            allow_origins=settings.cors_allow_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[REQUEST_ID_HEADER],
        )
    return app


def internal_app(
    settings: Settings,
    *,
    services: Services | None = None,
    template: Template | None = None,
    only: str | None = None,
) -> ASGIApp:
    """The queue and scheduled functions of the shared internal host (those without a
    `Metadata.LocalHost`), or with `only` that one function, which has a host of its own."""
    services = services or Services.from_settings(settings, template=template)
    template = template or services.template
    if only is not None:
        spec = template.functions.get(only)
        if spec is None or not (spec.sqs or spec.schedules) or spec.local_host is None:
            raise ValueError(f"{only} is not a queue or scheduled function with a LocalHost")
        chosen = [spec]
    else:
        chosen = [
            spec
            for spec in template.functions.values()
            if (spec.sqs or spec.schedules) and spec.local_host is None
        ]
    return InternalFunctions(
        {spec.logical_id: function_app(spec.module, services) for spec in chosen}
    )
