"""Request metrics of the local hosts (Prometheus) and the `/metrics` answer.

Labels are bounded on purpose: a request is counted under its function's logical id and the
route *template* it matched (`/v1/conversations/{id}`), never the raw path, so a scan of random
URLs cannot grow the series (whatever no route takes is `route="static"` or `"unmatched"`).
In AWS the same figures go to CloudWatch as embedded metrics (shared/platform/emf.py).
"""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.responses import Response

# Chat answers stream for seconds; the buckets reach past the function timeouts' minute.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

REQUESTS = Counter(
    "acs_requests", "Requests answered, by function, route template and status",
    ["function", "route", "method", "status"],
)  # fmt: skip
ERRORS = Counter(
    "acs_request_errors", "Requests answered with a 5xx (or not answered)", ["function", "route"]
)
FIRST_BYTE = Histogram(
    "acs_request_first_byte_seconds",
    "Time from a request's arrival to the first byte of its answer's body (for a stream, its"
    " first event: the latency the SLO is about)",
    ["function", "route"],
    buckets=_BUCKETS,
)
DURATION = Histogram(
    "acs_request_duration_seconds",
    "Time from a request's arrival to the end of its answer (a stream's last byte)",
    ["function", "route"],
    buckets=_BUCKETS,
)


def observe_request(
    function: str,
    route: str,
    method: str,
    status: int | None,
    duration_s: float,
    first_byte_s: float | None = None,
) -> None:
    """`status` None: the app failed before answering (counted as a 500). `first_byte_s` None:
    no body was sent (not observed)."""
    code = status or 500
    REQUESTS.labels(function, route, method, str(code)).inc()
    if code >= 500:
        ERRORS.labels(function, route).inc()
    DURATION.labels(function, route).observe(duration_s)
    if first_byte_s is not None:
        FIRST_BYTE.labels(function, route).observe(first_byte_s)


def metrics_response() -> Response:
    """The process's metrics in Prometheus's text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def bearer_allowed(authorization: str | None, token: str | None) -> bool:
    """Whether `Authorization: Bearer <token>` names the configured token (compared in constant
    time). No token configured: nobody is allowed."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
