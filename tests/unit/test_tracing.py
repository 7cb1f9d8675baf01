"""Trace ids in every log line, and the trace crossing an SQS message (attribute in, span out)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.platform import tracing
from shared.platform.logs import _RequestIdFilter
from shared.platform.runtime.batch import SqsRecord


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    spans = InMemorySpanExporter()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    return spans


def _logged(message: str) -> dict[str, object]:
    from pythonjsonlogger.json import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("{message}{request_id}{trace_id}{span_id}", style="{"))
    handler.addFilter(_RequestIdFilter())
    logger = logging.getLogger("test_tracing")
    logger.addHandler(handler)
    try:
        logger.warning(message)
    finally:
        logger.removeHandler(handler)
    return json.loads(out.getvalue())


def test_a_log_line_in_a_span_carries_its_trace_and_span_ids() -> None:
    with tracing.span("work") as current:
        line = _logged("inside")
        context = current.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    outside = _logged("outside")
    assert outside["trace_id"] is None and outside["span_id"] is None


def test_a_traceparent_in_a_message_attribute_is_continued_by_the_consumer(exporter) -> None:
    with tracing.span("producer") as producer:
        traceparent = tracing.current_traceparent()
    assert traceparent is not None
    record = SqsRecord(
        messageId="m1", receiptHandle="r", body="{}", eventSourceARN="arn:aws:sqs:r:1:q",
        messageAttributes={"traceparent": {"stringValue": traceparent, "dataType": "String"}},
    )  # fmt: skip
    assert tracing.record_traceparent(record) == traceparent
    with tracing.span("consumer", parent=tracing.context_from_traceparent(traceparent)) as consumer:
        pass
    assert consumer.get_span_context().trace_id == producer.get_span_context().trace_id
    finished = {s.name: s for s in exporter.get_finished_spans()}
    assert finished["consumer"].parent is not None
    assert finished["consumer"].parent.span_id == producer.get_span_context().span_id


def test_without_a_traceparent_a_span_starts_a_trace_of_its_own() -> None:
    with tracing.span("a") as first:
        pass
    with tracing.span("b", parent=tracing.context_from_traceparent(None)) as second:
        pass
    assert first.get_span_context().trace_id != second.get_span_context().trace_id
    assert tracing.message_attribute(None) == {}
    assert tracing.link_to("not a traceparent") is None


async def test_a_service_call_carries_the_trace_and_the_service_continues_it(exporter) -> None:
    """ResilientClient sends `traceparent`; ContinueTrace (the inference service's middleware)
    opens its server span as a child of the caller's client span."""
    import httpx
    from starlette.responses import PlainTextResponse

    from shared.platform.resilient_http import ResilientClient

    async def service(scope, receive, send) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    seen: list[str | None] = []

    async def forward(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent"))
        inner = httpx.ASGITransport(app=tracing.ContinueTrace(service, name="inference"))
        return await inner.handle_async_request(request)

    client = ResilientClient(
        service="inference", base_url="http://inference", headers={}, timeout_s=5,
        connect_timeout_s=1, transport=httpx.MockTransport(forward),
    )  # fmt: skip
    exporter.clear()
    with tracing.span("chat turn") as turn:
        response = await client.send("POST", "/v1/chat/completions", json={})
    await client.aclose()
    assert response.status_code == 200
    assert seen[0] is not None
    trace_id = turn.get_span_context().trace_id
    assert int(seen[0].split("-")[1], 16) == trace_id
    by_kind = {s.kind.name: s for s in exporter.get_finished_spans()}
    server, client_span = by_kind["SERVER"], by_kind["CLIENT"]
    assert server.name == client_span.name == "inference POST /v1/chat/completions"
    assert server.context.trace_id == trace_id
    assert server.parent is not None and server.parent.span_id == client_span.context.span_id
