"""The API envelope (DESIGN.md §5) and the one place that maps errors to responses."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from shared.platform.context import REQUEST_ID_HEADER, current_request_id
from shared.platform.errors import AppError
from shared.platform.runtime.outages import as_known_failure

log = logging.getLogger(__name__)


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {REQUEST_ID_HEADER: current_request_id() or ""}
    headers.update(extra or {})
    return headers


def ok(data: Any, *, status: int = 200) -> JSONResponse:
    body = {"status": "ok", "data": data, "request_id": current_request_id()}
    return JSONResponse(body, status_code=status, headers=_headers())


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "status": "error",
        "error": {"code": code, "message": message, "details": details},
        "request_id": current_request_id(),
    }


def error_response(exc: AppError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details),
        status_code=exc.status,
        headers=_headers(exc.headers),
    )


def unexpected_error_response(exc: BaseException) -> JSONResponse:
    known = as_known_failure(exc)
    if known is not None:  # a store down or saturated (503), a constraint conflict (409)
        log.warning("%s: %s: %s", known.code, type(exc).__name__, exc)
        return error_response(known)
    # The traceback goes to the log with the request id; the client sees no internals.
    log.error("unhandled error", exc_info=exc)
    return JSONResponse(
        error_body("server_error", "internal error"), status_code=500, headers=_headers()
    )
