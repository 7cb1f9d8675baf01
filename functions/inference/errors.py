"""OpenAI-style error bodies, and the refusals decided before a generation starts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from starlette.responses import JSONResponse

from functions.inference.adapter_cache import AdapterCapacity
from shared.neural.lora import AdapterError
from shared.platform.errors import NotFound
from shared.platform.errors import ValidationError as RefusedRequest


def error(
    status: int,
    message: str,
    kind: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class Refused(Exception):
    """An answer decided before generation starts (an adapter that cannot be used, ...)."""

    def __init__(self, response: JSONResponse):
        self.response = response


@contextlib.contextmanager
def adapter_refusals() -> Iterator[None]:
    """Turns each way an adapter call can fail into the OpenAI-style error a client can act
    on (raised as `Refused`, which the route wrapper answers)."""
    try:
        yield
    except NotFound as exc:
        raise Refused(
            error(404, exc.message, "invalid_request_error", code="model_not_found")
        ) from exc
    except (AdapterError, RefusedRequest) as exc:
        raise Refused(
            error(422, str(exc), "invalid_request_error", code="adapter_unusable")
        ) from exc
    except AdapterCapacity as exc:
        raise Refused(
            error(
                429,
                str(exc),
                "rate_limit_error",
                code="adapter_slots_full",
                headers={"Retry-After": "1"},
            )
        ) from exc
    except Exception as exc:  # the store or the database: the adapter may work on a retry
        raise Refused(
            error(
                503,
                f"adapter store unavailable: {type(exc).__name__}",
                "server_error",
                code="adapter_store_unavailable",
                headers={"Retry-After": "2"},
            )
        ) from exc
