"""Builds a function's ASGI app from its imported package, the way functions_framework.aio
serves it; used by the local gateway and by the Lambda entry point (run.sh)."""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

from functions_framework.aio import create_asgi_app_from_module
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import NotFound
from shared.runtime.context import (
    REQUEST_ID_HEADER,
    new_request_id,
    reset_request_id,
    set_request_id,
)
from shared.runtime.envelope import error_response

# functions_framework routes `/{path:path}`, whose `.*` stops at a newline: such a path would
# get Starlette's text/plain 404. No route has control characters, so none names anything.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(path: str) -> bool:
    return _CONTROL.search(path) is not None


class _EnvelopeGuard:
    """Answers what the framework's router cannot route in the envelope, not in text/plain."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_control_characters(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        given = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = new_request_id(given or None)
        token = set_request_id(request_id)
        try:
            response = error_response(NotFound(f"no route for {scope['method']} {scope['path']!r}"))
        finally:
            reset_request_id(token)
        await response(scope, receive, send)


def function_app(module: ModuleType | str) -> Any:
    if isinstance(module, str):
        module = importlib.import_module(module)
    return _EnvelopeGuard(
        create_asgi_app_from_module("handler", module.__file__, "http", module, None)
    )


def lambda_app() -> Any:
    """`uvicorn --factory shared.runtime.asgi:lambda_app` behind the Lambda Web Adapter."""
    from shared.config import get_settings
    from shared.runtime.logs import configure_logging

    settings = get_settings()
    configure_logging(level=settings.log_level, service=settings.service_name)
    if not settings.function_module:
        raise RuntimeError("FUNCTION_MODULE must name the function's main module")
    return function_app(settings.function_module)
