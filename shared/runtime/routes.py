"""Route tables: what a function answers, with which models, and who may call it.

A function's `main.py` builds one `RouteTable` and its `handler` hands every request to
`RouteTable.dispatch`, which matches the full request path (the function sees the same path
locally and behind API Gateway), validates the input, runs the endpoint, and answers in the
envelope. The gateway mounts routes from `template.yaml`; a test checks that the template and
the union of the route tables agree, and `/v1/openapi.json` is generated from these tables.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from shared.errors import AppError, MethodNotAllowed, NotFound, PayloadTooLarge, ValidationError
from shared.runtime.context import (
    REQUEST_ID_HEADER,
    current_request_id,
    new_request_id,
    reset_request_id,
    set_request_id,
)
from shared.runtime.envelope import error_response, ok, unexpected_error_response

MAX_JSON_BODY_BYTES = 1 << 20
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

BodyT = TypeVar("BodyT", bound=pydantic.BaseModel)


def compile_path(path: str) -> re.Pattern[str]:
    """`/v1/things/{id}` -> a regex whose named groups are the path parameters."""
    parts, last = [], 0
    for param in _PARAM.finditer(path):
        parts.append(re.escape(path[last : param.start()]))
        parts.append(f"(?P<{param.group(1)}>[^/]+)")
        last = param.end()
    parts.append(re.escape(path[last:]))
    return re.compile("^" + "".join(parts) + "$")


class Access(enum.StrEnum):
    """Who may call a route. Internal routes are served only on the internal address."""

    PUBLIC = "public"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Call(Generic[BodyT]):
    """What an endpoint receives: the raw request, path parameters and the validated input."""

    request: Request
    path_params: dict[str, str]
    body: BodyT | None


Endpoint = Callable[[Call[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: Endpoint
    summary: str
    access: Access = Access.PUBLIC
    request_model: type[pydantic.BaseModel] | None = None
    response_model: type[pydantic.BaseModel] | None = None
    status: int = 200
    streaming: bool = False
    # Compiled once; `{name}` matches one path segment, as in API Gateway.
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_path(self.path))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        return found.groupdict() if found else None


class RouteTable:
    def __init__(self, function_name: str, routes: list[Route]):
        self.function_name = function_name
        self.routes = tuple(routes)

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, params
            allowed = True
        if allowed:
            raise MethodNotAllowed(f"{method} is not allowed on {path}")
        raise NotFound(f"no route for {method} {path}")

    async def dispatch(self, request: Request) -> Response:
        token = set_request_id(new_request_id(request.headers.get(REQUEST_ID_HEADER)))
        try:
            route, params = self.find(request.method, request.url.path)
            body = await _parse_input(route, request)
            result = await route.endpoint(Call(request=request, path_params=params, body=body))
            response = _render(route, result)
            response.headers.setdefault(REQUEST_ID_HEADER, current_request_id() or "")
            return response
        except AppError as exc:
            return error_response(exc)
        except Exception as exc:
            return unexpected_error_response(exc)
        finally:
            reset_request_id(token)


async def _parse_input(route: Route, request: Request) -> pydantic.BaseModel | None:
    if route.request_model is None:
        return None
    if request.method in ("GET", "HEAD", "DELETE"):
        raw: Any = dict(request.query_params)
    else:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_JSON_BODY_BYTES:
            raise PayloadTooLarge(f"request body over {MAX_JSON_BODY_BYTES} bytes")
        payload = await request.body()
        if len(payload) > MAX_JSON_BODY_BYTES:
            raise PayloadTooLarge(f"request body over {MAX_JSON_BODY_BYTES} bytes")
        try:
            raw = json.loads(payload or b"{}")
        except json.JSONDecodeError as exc:
            raise ValidationError(
                "request body is not valid JSON", details={"error": str(exc)}
            ) from exc
    try:
        return route.request_model.model_validate(raw)
    except pydantic.ValidationError as exc:
        details = [
            {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationError("request failed validation", details=details) from exc


def _render(route: Route, result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if route.response_model is not None:
        result = route.response_model.model_validate(result).model_dump(mode="json")
    elif isinstance(result, pydantic.BaseModel):
        result = result.model_dump(mode="json")
    return ok(result, status=route.status)
