"""The request id of the work in hand, visible to every log line through a context variable."""

from __future__ import annotations

import contextvars
import re
import uuid

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# A caller-supplied id is kept only when it is short and plain, so it is safe in logs and headers.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
REQUEST_ID_HEADER = "x-request-id"


def new_request_id(candidate: str | None = None) -> str:
    if candidate and _SAFE_ID.match(candidate):
        return candidate
    return str(uuid.uuid4())


def set_request_id(value: str) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def current_request_id() -> str | None:
    return _request_id.get()
