"""SQS batch processing for queue functions (Powertools-style partial batch responses).

Each record is handled on its own; a failure is reported in `batchItemFailures` so only that
message is retried. On the last receive the queue allows, a failing message is moved to the
queue's DLQ by us, with the reason as message attributes, instead of silently by redrive; a
message that fails validation goes there on its first receive. A message that failed for a
reason that may pass (a dependency still starting, say) is made visible again after an
exponential back-off (ChangeMessageVisibility, as a Lambda function does itself), so it is
retried within seconds to minutes rather than after the queue's visibility timeout.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from shared.platform.clients import Clients
from shared.platform.errors import ValidationError
from shared.platform.runtime.backoff import backoff_delay
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.platform.settings import Settings
from shared.platform.template import QueueSpec
from shared.platform.tracing import context_from_traceparent, record_traceparent, span

log = logging.getLogger(__name__)


class SqsRecord(BaseModel):
    messageId: str
    receiptHandle: str
    body: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    messageAttributes: dict[str, Any] = Field(default_factory=dict)
    md5OfBody: str | None = None
    eventSource: str = "aws:sqs"
    eventSourceARN: str
    awsRegion: str | None = None

    @property
    def receive_count(self) -> int:
        return int(self.attributes.get("ApproximateReceiveCount", 1))

    @property
    def queue_name(self) -> str:
        return self.eventSourceARN.rsplit(":", 1)[-1]

    def payload(self) -> Any:
        """The message body parsed as JSON."""
        return json.loads(self.body)


class SqsBatch(BaseModel):
    Records: list[SqsRecord]


RecordHandler = Callable[[SqsRecord], Awaitable[None]]


class PermanentFailure(Exception):
    """Raised by a handler for work that can never succeed (a corrupt file, say): the message
    goes to the DLQ with this reason on its first receive."""


def is_permanent(exc: BaseException) -> bool:
    """A message that fails validation fails the same way on every receive: retrying it only
    delays the DLQ, so it goes there at once."""
    return isinstance(exc, pydantic.ValidationError | ValidationError | PermanentFailure)


def _queue_named(clients: Clients, name: str) -> QueueSpec | None:
    return next((q for q in clients.template.queues.values() if q.name == name), None)


def last_receive(clients: Clients, record: SqsRecord) -> bool:
    """Whether a failure now sends the message to its DLQ (its receive budget is spent)."""
    queue = _queue_named(clients, record.queue_name)
    limit = queue.max_receive_count if queue else None
    return limit is not None and record.receive_count >= limit


async def _dead_letter(
    clients: Clients, record: SqsRecord, reason: str, *, permanent: bool = False
) -> bool:
    """Moves a message that used its last receive (or can never succeed) to the DLQ with the
    reason. Returns False when the queue has no DLQ or the receive budget is not spent (let
    SQS retry it)."""
    queue = _queue_named(clients, record.queue_name)
    if queue is None or not queue.dead_letter_queue or queue.max_receive_count is None:
        return False
    if not permanent and record.receive_count < queue.max_receive_count:
        return False
    attributes = {
        "failure_reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
        "source_queue": {"DataType": "String", "StringValue": queue.name},
        "source_message_id": {"DataType": "String", "StringValue": record.messageId},
        "receive_count": {"DataType": "Number", "StringValue": str(record.receive_count)},
    }
    url = await clients.queues.url(queue.dead_letter_queue)
    await asyncio.to_thread(
        clients.sqs.send_message,
        QueueUrl=url,
        MessageBody=record.body,
        MessageAttributes=attributes,
    )
    return True


async def back_off(
    sqs: Any, url: str, messages: list[tuple[str, int]], *, settings: Settings, max_s: int
) -> None:
    """Makes messages ((receipt handle, receive count) pairs) visible again after their
    back-off: QUEUE_RETRY_BASE_S doubling per receive, jittered, capped by QUEUE_RETRY_MAX_S and
    `max_s` (the queue's visibility timeout). Used by a queue function for the messages it
    failed, and by the local dispatcher when the function could not be reached at all."""

    def delay_s(receives: int) -> int:  # SQS takes whole seconds
        delay = backoff_delay(
            receives, base_s=settings.queue_retry_base_s, cap_s=settings.queue_retry_max_s
        )
        return min(round(delay), max_s)

    entries = [
        {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": delay_s(receives)}
        for i, (receipt, receives) in enumerate(messages)
    ]
    for start in range(0, len(entries), 10):  # the batch API's limit
        await asyncio.to_thread(
            sqs.change_message_visibility_batch, QueueUrl=url, Entries=entries[start : start + 10]
        )


async def _back_off(clients: Clients, records: list[SqsRecord]) -> None:
    """Best effort: if this fails the messages still come back after the visibility timeout."""
    by_queue: dict[str, list[SqsRecord]] = {}
    for record in records:
        by_queue.setdefault(record.queue_name, []).append(record)
    for name, failed in by_queue.items():
        queue = _queue_named(clients, name)
        if queue is None:
            continue
        try:
            await back_off(
                clients.sqs, await clients.queues.url(queue.logical_id),
                [(r.receiptHandle, r.receive_count) for r in failed],
                settings=clients.settings, max_s=queue.visibility_timeout_s,
            )  # fmt: skip
        except Exception as exc:
            log.warning("could not back off %d message(s) of %s: %s", len(failed), name, exc)


async def process_batch(event: SqsBatch, handle: RecordHandler, clients: Clients) -> JSONResponse:
    failures = []
    retry: list[SqsRecord] = []
    for record in event.Records:
        try:
            # Each record continues the trace of the request that enqueued it (its
            # `traceparent` attribute; the dispatcher's span when it has none).
            traceparent = record_traceparent(record)
            with span(
                f"process {record.queue_name}",
                kind=SpanKind.CONSUMER,
                parent=context_from_traceparent(traceparent) if traceparent else None,
                attributes={"messaging.system": "aws_sqs", "messaging.message.id": record.messageId,
                            "messaging.destination.name": record.queue_name},
            ):  # fmt: skip
                await handle(record)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "record %s failed (receive %s): %s", record.messageId, record.receive_count, reason
            )
            try:
                if await _dead_letter(clients, record, reason, permanent=is_permanent(exc)):
                    continue  # in the DLQ with its reason; report success so SQS deletes it
            except Exception:
                log.exception(
                    "could not dead-letter %s; leaving it to SQS redrive", record.messageId
                )
            failures.append({"itemIdentifier": record.messageId})
            retry.append(record)
    if retry:
        # After every record ran, so the back-off is the last visibility change this batch makes.
        await _back_off(clients, retry)
    # The Lambda contract: the bare object, not the API envelope.
    return JSONResponse({"batchItemFailures": failures})


def queue_function(name: str, handle: Callable[..., Awaitable[None]], summary: str) -> RouteTable:
    """The route table of a queue function: SQS batches at `POST /events` (the Lambda Web
    Adapter's pass-through path), each record given to `handle(record, services=...)`."""

    async def events(call: Call[SqsBatch], *, services: Clients) -> JSONResponse:
        return await process_batch(
            call.body, functools.partial(handle, services=services), services
        )

    return RouteTable(
        name,
        [Route("POST", "/events", events, summary, access=Access.INTERNAL, request_model=SqsBatch)],
    )
