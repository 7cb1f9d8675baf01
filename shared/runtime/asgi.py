"""Builds a function's ASGI app from its imported package, the way functions_framework.aio
serves it; used by the local gateway and by the Lambda entry point (run.sh)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from functions_framework.aio import create_asgi_app_from_module


def function_app(module: ModuleType | str) -> Any:
    if isinstance(module, str):
        module = importlib.import_module(module)
    return create_asgi_app_from_module("handler", module.__file__, "http", module, None)


def lambda_app() -> Any:
    """`uvicorn --factory shared.runtime.asgi:lambda_app` behind the Lambda Web Adapter."""
    from shared.config import get_settings
    from shared.runtime.logs import configure_logging

    settings = get_settings()
    configure_logging(level=settings.log_level, service=settings.service_name)
    if not settings.function_module:
        raise RuntimeError("FUNCTION_MODULE must name the function's main module")
    return function_app(settings.function_module)
