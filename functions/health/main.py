"""Health function: dependency health and the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, Response

from shared.platform.errors import Unavailable
from shared.platform.health import HealthReport, check_health
from shared.platform.runtime.routes import Call, Route, RouteTable
from shared.services import Services

# Written by `make openapi` (infra/openapi.py) from the template and every function's route
# table, and shipped with the code: on Lambda this process holds only this function.
OPENAPI_FILE = Path(__file__).with_name("openapi.json")


async def healthz(call: Call[Any], *, services: Services) -> HealthReport:
    report = await check_health(services)
    if report.status != "ok":
        raise Unavailable("a dependency is down", details=report.model_dump(mode="json"))
    return report


async def openapi(call: Call[Any], *, services: Services) -> Response:
    document = json.loads(OPENAPI_FILE.read_bytes())
    settings = services.settings
    document["info"] = {**document["info"], "title": settings.service_name,
                        "version": settings.version}  # fmt: skip
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
