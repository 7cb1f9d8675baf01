"""One error tree (DESIGN.md §6.6): every expected failure is an `AppError` subclass.

The code maps to the HTTP status in one place (`shared.platform.runtime.envelope`); handlers raise,
they never build error responses themselves.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    code = "server_error"
    status = 500

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class ValidationError(AppError):
    code, status = "validation_error", 400


class Unauthorized(AppError):
    code, status = "unauthorized", 401


class MfaRequired(AppError):
    code, status = "mfa_required", 401


class Forbidden(AppError):
    code, status = "forbidden", 403


class NotFound(AppError):
    code, status = "not_found", 404


class MethodNotAllowed(AppError):
    code, status = "method_not_allowed", 405


class Conflict(AppError):
    code, status = "conflict", 409


class PayloadTooLarge(AppError):
    code, status = "payload_too_large", 413


class UnsupportedMediaType(AppError):
    code, status = "unsupported_media_type", 415


class RateLimited(AppError):
    code, status = "rate_limited", 429

    def __init__(self, message: str, *, retry_after_s: int, details: Any = None):
        super().__init__(message, details=details, headers={"Retry-After": str(retry_after_s)})


class Unavailable(AppError):
    """A dependency (the model, the database, the cache) cannot serve now; the client may try
    again after `Retry-After` seconds. Never used for the client's own mistakes."""

    code, status = "unavailable", 503

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        retry_after_s: int = 5,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(
            message, details=details, headers={"Retry-After": str(retry_after_s), **(headers or {})}
        )


class ServerError(AppError):
    code, status = "server_error", 500
