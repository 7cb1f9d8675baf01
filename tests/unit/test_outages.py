"""Store failures become client-facing errors in the envelope, not 500s: outages 503 with
Retry-After, integrity violations 409 naming the constraint (no database message)."""

from __future__ import annotations

import json

import psycopg
import redis.exceptions
from psycopg_pool import PoolTimeout

from shared.platform.runtime.envelope import unexpected_error_response
from shared.platform.runtime.outages import as_conflict, as_known_failure, as_unavailable


def _body(exc: BaseException) -> tuple[int, dict, dict]:
    response = unexpected_error_response(exc)
    return response.status_code, json.loads(bytes(response.body)), dict(response.headers)


def test_outages_are_503_with_retry_after() -> None:
    outages = [
        PoolTimeout("no connection in 9 s"),
        psycopg.OperationalError("refused"),
        redis.exceptions.ConnectionError("gone"),
        redis.exceptions.TimeoutError(),
    ]
    for exc in outages:
        status, body, headers = _body(exc)
        assert status == 503 and body["error"]["code"] == "unavailable", exc
        assert int(headers["retry-after"]) > 0
        assert "refused" not in body["error"]["message"]  # the store's own text stays in the log


def test_integrity_violations_are_409_without_the_database_message() -> None:
    status, body, _ = _body(psycopg.errors.ForeignKeyViolation("insert violates fk on app_user"))
    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["details"]["reason"] == "constraint"
    assert "app_user" not in body["error"]["message"]
    assert as_conflict(psycopg.errors.UniqueViolation("dup")) is not None


def test_bugs_stay_500() -> None:
    assert as_known_failure(KeyError("x")) is None and as_unavailable(ValueError()) is None
    status, body, _ = _body(RuntimeError("boom"))
    assert status == 500 and body["error"] == {"code": "server_error", "message": "internal error",
                                               "details": None}  # fmt: skip
