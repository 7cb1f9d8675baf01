"""Health function: dependency health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from shared.platform.errors import Unavailable
from shared.platform.health import HealthReport, check_health
from shared.platform.runtime.openapi import build_openapi
from shared.platform.runtime.routes import Call, Route, RouteTable
from shared.services import Services


async def healthz(call: Call[Any], *, services: Services) -> HealthReport:
    report = await check_health(services)
    if report.status != "ok":
        raise Unavailable("a dependency is down", details=report.model_dump(mode="json"))
    return report


async def openapi(call: Call[Any], *, services: Services) -> Response:
    document = build_openapi(
        services.template, title=services.settings.service_name, version=services.settings.version
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
