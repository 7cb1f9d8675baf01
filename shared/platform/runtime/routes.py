"""Route tables: what a function answers, with which models, and who may call it.

A function's `main.py` builds one `RouteTable` named `ROUTES`; its ASGI app
(shared.platform.runtime.asgi) hands every request to `RouteTable.dispatch` with the process's
services, which matches the full request path (the function sees the same path locally and
behind API Gateway), validates the input, runs the endpoint with the services (keyword-only),
and answers in the envelope. The gateway mounts routes from `template.yaml`; a test checks that
the template and the union of the route tables agree, and `/v1/openapi.json` is generated from
these tables.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import pydantic
from starlette.requests import Request
from starlette.responses import Response

from shared.platform.auth.tokens import Principal
from shared.platform.context import (
    REQUEST_ID_HEADER,
    current_request_id,
    new_request_id,
    reset_request_id,
    set_request_id,
)
from shared.platform.errors import (
    AppError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    ValidationError,
)
from shared.platform.runtime.envelope import error_response, ok, unexpected_error_response
from shared.platform.runtime.inputs import (
    MAX_JSON_BODY_BYTES,
    check_storable,
    json_body,
    unstorable,
)

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# A route's declared input: the handler of a route with `request_model=M` takes `Call[M]` and
# gets the parsed M (never None); a route without one takes `Call[None]` (or `Call[Any]`).
BodyT = TypeVar("BodyT")


def compile_path(path: str) -> re.Pattern[str]:
    """`/v1/things/{id}` -> a regex whose named groups are the path parameters."""
    parts, last = [], 0
    for param in _PARAM.finditer(path):
        parts.append(re.escape(path[last : param.start()]))
        parts.append(f"(?P<{param.group(1)}>[^/]+)")
        last = param.end()
    parts.append(re.escape(path[last:]))
    # \Z, not $: `$` also matches before a trailing newline (`/v1/me%0A` would be `/v1/me`).
    return re.compile("^" + "".join(parts) + r"\Z")


class Access(enum.StrEnum):
    """Who may call a route. Internal routes are served only on the internal address."""

    PUBLIC = "public"
    INTERNAL = "internal"
    USER = "user"  # a valid access token of an active session
    ADMIN = "admin"  # the same, with the admin role


@dataclass(frozen=True)
class Call(Generic[BodyT]):
    """What an endpoint receives: the raw request, path parameters and the validated input
    (the body, or the query parameters of a GET/DELETE), typed by the route's request model."""

    request: Request
    path_params: dict[str, str]
    body: BodyT
    principal: Principal | None = None

    def uuid_param(self, name: str) -> str:
        """A path parameter that must be a UUID; anything else names no object (404)."""
        value = self.path_params.get(name, "")
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise NotFound(f"no such object: {value[:64]!r}") from None

    @property
    def user(self) -> Principal:
        """The authenticated caller (routes with USER or ADMIN access always have one)."""
        if self.principal is None:
            raise Unauthorized("authentication required")
        return self.principal


# `endpoint(call, services=services)`: the services are the process's (shared.services), opaque
# to this module, which is below them.
Endpoint = Callable[..., Awaitable[Any]]
Authenticator = Callable[[Request, Any], Awaitable[Principal]]
# Takes one token from a named budget for this caller (the user, or the client IP when
# anonymous); raises RateLimited when the bucket is empty.
RateLimiter = Callable[[str, Request, Principal | None, Any], Awaitable[None]]


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
    # A named budget of shared.platform.limits.rate.rules ("chat", "uploads", "configops",
    # "voice", "login_ip"...).
    rate_limit: str | None = None
    # For the OpenAPI document only: what a success looks like when it is not the envelope
    # ("document": a bare JSON document; "redirect": a redirect with no body; "text": plain
    # text, such as Prometheus metrics; "audio": audio bytes, such as spoken answers), and a
    # multipart/form-data body the endpoint reads itself.
    answer: Literal["envelope", "document", "redirect", "text", "audio"] = "envelope"
    form_model: type[pydantic.BaseModel] | None = None
    # The request model comes from a JSON body even for a DELETE (whose input is otherwise
    # its query): DELETE /v1/me takes a password, which does not belong in a URL that proxies
    # log. An empty body is `{}`.
    json_body: bool = False
    # Compiled once; `{name}` matches one path segment, as in API Gateway.
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_path(self.path))

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        return found.groupdict() if found else None


class RouteTable:
    def __init__(
        self,
        function_name: str,
        routes: list[Route],
        *,
        authenticate: Authenticator | None = None,
        rate_limit: RateLimiter | None = None,
    ):
        self.function_name = function_name
        self.routes = tuple(routes)
        self.authenticate, self.rate_limit = authenticate, rate_limit
        if authenticate is None and any(r.access in (Access.USER, Access.ADMIN) for r in routes):
            raise ValueError(f"{function_name}: routes that need a user need an authenticator")
        if rate_limit is None and any(r.rate_limit for r in routes):
            raise ValueError(f"{function_name}: rate-limited routes need a rate limiter")

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if any(unstorable(params)):  # a NUL names no object (and Postgres refuses it)
                raise NotFound(f"no route for {method} {path[:200]!r}")
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, params
            allowed = True
        if allowed:
            raise MethodNotAllowed(f"{method} is not allowed on {path}")
        raise NotFound(f"no route for {method} {path}")

    async def dispatch(self, request: Request, services: Any) -> Response:
        token = set_request_id(new_request_id(request.headers.get(REQUEST_ID_HEADER)))
        try:
            route, params = self.find(request.method, request.url.path)
            principal = await self._principal(route, request, services)
            if route.rate_limit and self.rate_limit is not None:
                await self.rate_limit(route.rate_limit, request, principal, services)
            body = await _parse_input(route, request)
            result = await route.endpoint(
                Call(request=request, path_params=params, body=body, principal=principal),
                services=services,
            )
            response = _render(route, result)
            response.headers.setdefault(REQUEST_ID_HEADER, current_request_id() or "")
            return response
        except AppError as exc:
            return error_response(exc)
        except Exception as exc:
            return unexpected_error_response(exc)
        finally:
            reset_request_id(token)

    async def _principal(self, route: Route, request: Request, services: Any) -> Principal | None:
        """Authentication comes before input parsing: an anonymous caller learns nothing
        about what a route accepts."""
        if route.access not in (Access.USER, Access.ADMIN):
            return None
        assert self.authenticate is not None
        principal = await self.authenticate(request, services)
        if route.access is Access.ADMIN and not principal.is_admin:
            raise Forbidden("this route needs the admin role")
        return principal


async def _parse_input(route: Route, request: Request) -> pydantic.BaseModel | None:
    if route.request_model is None:
        return None
    if request.method in ("GET", "HEAD", "DELETE") and not route.json_body:
        raw: Any = dict(request.query_params)
        check_storable(raw, where="query")
    else:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_JSON_BODY_BYTES:
            raise PayloadTooLarge(f"request body over {MAX_JSON_BODY_BYTES} bytes")
        raw = json_body(await request.body(), request.headers.get("content-type"))
        check_storable(raw, where="request body")
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
