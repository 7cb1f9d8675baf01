"""Health function: dependency health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.deps import get_deps
from shared.errors import Unavailable
from shared.health import HealthReport, check_health
from shared.runtime.openapi import build_openapi
from shared.runtime.routes import Call, Route, RouteTable


async def healthz(call: Call[Any]) -> HealthReport:
    report = await check_health(get_deps())
    if report.status != "ok":
        raise Unavailable("a dependency is down", details=report.model_dump(mode="json"))
    return report


async def openapi(call: Call[Any]) -> Response:
    deps = get_deps()
    document = build_openapi(
        deps.template, title=deps.settings.service_name, version=deps.settings.version
    )
    return JSONResponse(document)  # OpenAPI tooling expects the bare document


ROUTES = RouteTable(
    "health",
    [
        Route(
            "GET",
            "/healthz",
            healthz,
            "Dependency health, version and commit",
            response_model=HealthReport,
        ),
        Route(
            "GET",
            "/v1/openapi.json",
            openapi,
            "OpenAPI document of the public API",
            answer="document",
        ),
    ],
)


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    return await ROUTES.dispatch(request)
