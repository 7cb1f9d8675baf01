"""Failures of the stores themselves, told apart from bugs.

A pool with no free connection, a database that went away (shut down, restarting, refusing
connections) or a cache that does not answer is an outage the client can wait out: it gets
503 `unavailable` with `Retry-After`, not a 500, and the operator gets a warning line instead
of a traceback for each request.

A constraint the database enforces (a foreign key to a row that is gone, a unique value taken
by a concurrent request) is a conflict with the current state: 409 `conflict` naming the
constraint, never the database's own message (which may leak schema details).
"""

from __future__ import annotations

import psycopg
import redis.exceptions
from psycopg_pool import PoolTimeout, TooManyRequests

from shared.platform.errors import AppError, Conflict, Unavailable

RETRY_AFTER_S = 2

# OperationalError covers "connection refused", AdminShutdown and a connection lost mid-query;
# a statement timeout (QueryCanceled) is one too, and the database being overloaded is a fair
# reading of it.
_OUTAGES: dict[type[BaseException], str] = {
    PoolTimeout: "the database is busy",
    TooManyRequests: "the database is busy",
    psycopg.OperationalError: "the database is unavailable",
    redis.exceptions.ConnectionError: "the cache is unavailable",
    redis.exceptions.TimeoutError: "the cache is unavailable",
}


def as_unavailable(exc: BaseException) -> Unavailable | None:
    """The client-facing error for a store outage, or None when `exc` is not one."""
    for kind, message in _OUTAGES.items():
        if isinstance(exc, kind):
            return Unavailable(
                f"{message}; try again shortly",
                details={"reason": "dependency", "dependency": type(exc).__name__},
                retry_after_s=RETRY_AFTER_S,
            )
    return None


def as_conflict(exc: BaseException) -> Conflict | None:
    """409 for an integrity violation (foreign key, unique, exclusion), or None."""
    if not isinstance(exc, psycopg.errors.IntegrityError):
        return None
    diag = getattr(exc, "diag", None)
    return Conflict(
        "the request conflicts with the current state of the data",
        details={"reason": "constraint", "constraint": getattr(diag, "constraint_name", None),
                 "table": getattr(diag, "table_name", None)},
    )  # fmt: skip


def as_known_failure(exc: BaseException) -> AppError | None:
    """A store outage (503) or a constraint conflict (409); None for anything else (a bug)."""
    return as_unavailable(exc) or as_conflict(exc)
