"""One trace from a gateway request to the queue consumer, and the metrics of a real delivery.

Everything runs in this process against the real stack, with an in-memory span exporter: the
gateway's public app (sign-up, which enqueues the verification mail through the outbox), the
outbox relay to SQS, and the dispatcher's delivery of that message to the mailer function on
the internal host (its ASGI app). The trace id of the sign-up request must be the trace id of
the outbox row, of the SQS message's `traceparent` attribute, of the dispatcher's delivery and
of the mailer's span for the record."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from infra.dispatcher.app import Dispatcher
from infra.gateway.app import internal_app
from shared.platform import tracing
from shared.platform.aws import sqs_client
from shared.platform.outbox import relay_once
from tests.integration.authkit import mails_to, sign_up
from tests.integration.conftest import gateway_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    spans = InMemorySpanExporter()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    return spans


async def _receive(sqs, url: str, outbox_id: int) -> dict:
    """The message the relay sent for `outbox_id` (others on the queue are left alone)."""
    for _ in range(20):
        response = await asyncio.to_thread(
            sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
            VisibilityTimeout=30, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )  # fmt: skip
        for message in response.get("Messages", []):
            attribute = message.get("MessageAttributes", {}).get("outbox_id", {})
            if attribute.get("StringValue") == str(outbox_id):
                return message
    raise AssertionError(f"outbox {outbox_id}'s message never arrived")


async def test_one_trace_goes_from_the_gateway_through_the_outbox_to_the_consumer(
    exporter, settings, services
) -> None:
    exporter.clear()
    async with gateway_client(settings, services) as api:
        signed = await sign_up(api)
    user_id, address = signed["user"]["id"], signed["user"]["email"]
    request_span = next(
        s for s in exporter.get_finished_spans() if s.name == "POST /v1/auth/signup"
    )
    trace_id = format(request_span.context.trace_id, "032x")
    function_span = next(s for s in exporter.get_finished_spans() if s.parent is not None
                         and s.parent.span_id == request_span.context.span_id)  # fmt: skip
    assert function_span.attributes["http.route"] == "/v1/auth/signup"

    async with services.db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT id, traceparent FROM outbox_message"
                " WHERE queue = 'MailQueue' AND body->>'user_id' = %s",
                (user_id,),
            )
        ).fetchone()
    assert row is not None
    outbox_id, traceparent = row
    assert traceparent.split("-")[1] == trace_id  # the row keeps the request's trace

    sqs = sqs_client(settings)
    urls = await services.queues.all_urls()
    await relay_once(services.db, sqs, urls)  # the sign-up's own flush may have sent it already
    message = await _receive(sqs, urls["MailQueue"], outbox_id)
    assert message["MessageAttributes"]["traceparent"]["StringValue"] == traceparent

    template = services.template
    mailer = next(
        f for f in template.functions.values() if any(e.queue == "MailQueue" for e in f.sqs)
    )
    event = next(e for e in mailer.sqs if e.queue == "MailQueue")
    queue = template.queues["MailQueue"]
    arn = sqs.get_queue_attributes(QueueUrl=urls["MailQueue"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    dispatcher = Dispatcher(settings, template, sqs)
    host = internal_app(settings, services=services)
    dispatcher.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=host))
    done_before = (
        REGISTRY.get_sample_value(
            "acs_dispatcher_messages_total",
            {"function": mailer.logical_id, "queue": queue.name, "outcome": "done"},
        )
        or 0.0
    )
    try:
        await dispatcher.deliver(mailer, event, queue, urls["MailQueue"], arn, [message])
    finally:
        await dispatcher.http.aclose()
        await dispatcher.db.close()

    assert mails_to(settings.mail_dir, address, "verify_email"), "the mailer sent nothing"
    spans = exporter.get_finished_spans()
    delivery = next(s for s in spans if s.name == f"deliver {queue.name}")
    consumer = next(s for s in spans if s.name == f"process {queue.name}")
    mailer_call = next(s for s in spans if s.attributes.get("http.route") == "/events")
    for span in (delivery, consumer, mailer_call):
        assert format(span.context.trace_id, "032x") == trace_id, span.name
    # The consumer's parent is the span that enqueued the mail: the sign-up's function call.
    assert consumer.parent is not None
    assert format(consumer.parent.span_id, "016x") == traceparent.split("-")[2]
    done_after = REGISTRY.get_sample_value(
        "acs_dispatcher_messages_total",
        {"function": mailer.logical_id, "queue": queue.name, "outcome": "done"},
    )
    assert done_after == done_before + 1
