"""Traces with OpenTelemetry: one trace follows a request from the gateway through the
functions, the outbox and SQS, and into the inference and voice services.

Ids always flow (every process has an SDK tracer provider, so spans get real ids and every log
line names them); spans leave the process only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, over OTLP/HTTP in batches. Without it nothing is
exported and nothing is printed. Context crosses process boundaries as W3C `traceparent`: an
HTTP header between services, an SQS message attribute between a producer and its consumer
(the outbox stores it with the row, since the row is sent after the request has ended).

No auto-instrumentation: the few spans that matter (a gateway request, a function call, a
queue record, a dispatcher delivery) are opened where they happen.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: TracerProvider | None = None


def _exporting() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service: str = "adaptive-chat") -> TracerProvider:
    """Idempotent: the process's tracer provider, named after `service` the first time (the
    process's entry point calls it through `configure_logging`; anything that traces before
    that gets the default name)."""
    global _provider
    with _lock:
        if _provider is None:
            name = os.environ.get("OTEL_SERVICE_NAME") or service
            _provider = TracerProvider(resource=Resource.create({"service.name": name}))
            if _exporting():
                # Imported only when used: the exporter pulls in protobuf.
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
                from opentelemetry.sdk.trace.export import BatchSpanProcessor

                _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return _provider


def add_span_processor(processor: SpanProcessor) -> None:
    """For tests (an in-memory exporter) and for operators who want another sink."""
    configure_tracing().add_span_processor(processor)


def tracer() -> trace.Tracer:
    return configure_tracing().get_tracer("adaptive-chat")


def ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the span in hand, as lowercase hex; (None, None) outside one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Adds `traceparent` (and `tracestate`) of the span in hand to outgoing headers."""
    _propagator.inject(headers)
    return headers


def current_traceparent() -> str | None:
    return inject({}).get(TRACEPARENT)


def context_from(carrier: Mapping[str, str]) -> otel_context.Context:
    """The remote parent a `traceparent` in `carrier` names (an empty context without one)."""
    return _propagator.extract(dict(carrier))


def context_from_traceparent(value: str | None) -> otel_context.Context:
    return context_from({TRACEPARENT: value} if value else {})


def record_traceparent(record: Any) -> str | None:
    """The `traceparent` an SQS record (Lambda's event shape) carries in its attributes."""
    attributes = getattr(record, "messageAttributes", None)
    if attributes is None and isinstance(record, Mapping):
        attributes = record.get("messageAttributes")
    value = (attributes or {}).get(TRACEPARENT) or {}
    found = value.get("stringValue") or value.get("StringValue")
    return str(found) if found else None


def message_attribute(traceparent: str | None) -> dict[str, dict[str, str]]:
    """The SQS `MessageAttributes` entry that carries a trace to the consumer."""
    if not traceparent:
        return {}
    return {TRACEPARENT: {"DataType": "String", "StringValue": traceparent}}


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    links: list[Link] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span made current for the block; an exception marks it as an error and goes on.
    `parent`: a remote parent (from a header or a message); default, the span in hand."""
    with tracer().start_as_current_span(
        name,
        context=parent,
        kind=kind,
        links=links,
        attributes=dict(attributes or {}),
        record_exception=True,
        set_status_on_exception=True,
    ) as current:
        yield current


def has_current_span() -> bool:
    return trace.get_current_span().get_span_context().is_valid


def link_to(traceparent: str | None) -> Link | None:
    """A link to the span a `traceparent` names (for a batch that mixes several traces)."""
    span_context = trace.get_current_span(context_from_traceparent(traceparent)).get_span_context()
    return Link(span_context) if span_context.is_valid else None


def mark_error(current: Span, description: str) -> None:
    current.set_status(Status(StatusCode.ERROR, description))


class ContinueTrace:
    """ASGI middleware for an internal service (the inference service): each HTTP request is
    a server span continuing the caller's `traceparent`, so the model's time shows inside the
    chat function's trace. (Only for services behind a bearer token: the public gateway starts
    its own traces.)"""

    def __init__(self, app: Any, name: str = "service"):
        self.app, self.name = app, name

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status: dict[str, int] = {}

        async def send_noting_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        with span(
            f"{self.name} {scope['method']} {scope['path']}",
            kind=SpanKind.SERVER,
            parent=context_from(headers),
        ) as current:
            await self.app(scope, receive, send_noting_status)
            current.set_attribute("http.response.status_code", status.get("code", 0))
