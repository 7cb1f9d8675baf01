"""Structured JSON logs; every line carries the request id of the work in hand and the ids of
its trace and span (OpenTelemetry, shared/platform/tracing.py), so a line found in one service's
log leads to the whole request in the others' and in the trace view."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from shared.platform.context import current_request_id
from shared.platform.tracing import configure_tracing, ids


class _RequestIdFilter(logging.Filter):
    """Stamps the request, trace and span ids of the work in hand (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        record.trace_id, record.span_id = ids()
        return True


def configure_logging(*, level: str = "INFO", service: str = "adaptive-chat") -> None:
    """Idempotent: replaces the root handlers with one JSON handler on stderr, and names the
    process's traces after `service` (nothing is exported unless an OTLP endpoint is set)."""
    configure_tracing(service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}{request_id}{trace_id}{span_id}",
            style="{",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter (boto's wire logs could carry signed headers) stays at WARNING.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
