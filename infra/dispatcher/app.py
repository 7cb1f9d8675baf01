"""The local stand-in for Lambda's SQS event source mapping and EventBridge schedules.

For every SQS event in template.yaml it long-polls the queue, POSTs the batch as a real SQS
Lambda event to the function on its local host (the shared internal address, or the host of
its own that `Metadata.LocalHost` names: the train function's), extends the messages'
visibility while the function runs, and deletes the messages the function did not list in
`batchItemFailures` (all of them stay when the call fails: Lambda's semantics). Failed
messages reappear after a back-off (the function sets it; when the function could not be
reached or failed as a whole, the dispatcher does) and SQS moves them to the DLQ after
maxReceiveCount. It also fires the template's schedules, relays the transactional outbox, and
re-drives from Postgres the work whose messages the local SQS server lost when it restarted
(infra/dispatcher/redrive.py).

A message is received under a short lease (DISPATCHER_LEASE_S) that is renewed while its
function runs, not under the queue's visibility timeout: if this process dies, what it held is
delivered again within the lease, not an hour later.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import functools
import logging
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from croniter import croniter
from opentelemetry.trace import SpanKind

from infra.dispatcher import metrics
from infra.dispatcher.redrive import QueueWatch, redrive
from shared.platform.db.pool import PoolHolder
from shared.platform.outbox import relay_once
from shared.platform.queues import QueueDirectory
from shared.platform.runtime.batch import back_off
from shared.platform.settings import Settings
from shared.platform.template import FunctionSpec, QueueSpec, ScheduleEvent, SqsEvent, Template
from shared.platform.tracing import (
    context_from_traceparent,
    inject,
    link_to,
    record_traceparent,
    span,
)

log = logging.getLogger("dispatcher")

T = TypeVar("T")
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def next_fire(expression: str, after: dt.datetime) -> dt.datetime:
    """Next time an EventBridge `rate(...)` or `cron(...)` expression fires after `after`."""
    rate = _RATE.match(expression.strip())
    if rate:
        seconds = int(rate.group(1)) * _UNIT_S[rate.group(2).rstrip("s")]
        return after + dt.timedelta(seconds=seconds)
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != 6:
            raise ValueError(f"{expression}: EventBridge cron has 6 fields")
        # EventBridge: min hour day-of-month month day-of-week year; '?' means "any".
        standard = " ".join(f.replace("?", "*") for f in fields[:5])
        return croniter(standard, after).get_next(dt.datetime)
    raise ValueError(f"unsupported schedule expression {expression!r}")


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping presents it."""
    attributes = {
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        **attributes,
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class Dispatcher:
    def __init__(self, settings: Settings, template: Template, sqs: Any):
        self.settings = settings
        self.template = template
        self.sqs = sqs
        # boto3 blocks, so every SQS call runs in a thread. A long-poll holds its thread for
        # up to DISPATCHER_WAIT_S, and the template has about twenty: asyncio's default pool
        # (CPUs + 4 threads, 6 on two cores) would queue the polls behind one another and
        # every delete, visibility extension and outbox send behind them. This pool has a
        # thread per poll, one more per poll for its batch's deletes and extensions, and room
        # for the relay, the re-drive and the schedules.
        self.pollers = sum(len(f.sqs) for f in template.functions.values())
        self.executor = ThreadPoolExecutor(
            max_workers=2 * self.pollers + 8, thread_name_prefix="dispatcher-sqs"
        )
        self.queues = QueueDirectory(sqs, template)
        self.http = httpx.AsyncClient()
        self.stopping = asyncio.Event()
        self.db = PoolHolder(settings)
        self.watch = QueueWatch(sqs)

    async def blocking(self, call: Callable[..., T], /, **kwargs: Any) -> T:
        """`call(**kwargs)` in the dispatcher's pool, with this task's context (its span)."""
        context = contextvars.copy_context()
        bound = functools.partial(context.run, call, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, bound)

    def events_url(self, function: FunctionSpec) -> str:
        """The function's events on its local host: the shared internal host, or its own
        (`Metadata.LocalHost`: the train function, whose jobs run for minutes)."""
        host = self.settings.function_host_url(function.local_host)
        return f"{host}/functions/{function.logical_id}/events"

    def lease_s(self, queue: QueueSpec) -> int:
        return max(min(self.settings.dispatcher_lease_s, queue.visibility_timeout_s), 1)

    # --- SQS ------------------------------------------------------------------------------------
    async def poll(self, function: FunctionSpec, event: SqsEvent) -> None:
        queue = self.template.queues[event.queue]
        url, arn = await self._resolve(queue)
        while not self.stopping.is_set():
            try:
                response = await self.blocking(
                    self.sqs.receive_message,
                    QueueUrl=url,
                    MaxNumberOfMessages=min(event.batch_size, 10),
                    VisibilityTimeout=self.lease_s(queue),
                    WaitTimeSeconds=self.settings.dispatcher_wait_s,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception as exc:
                log.warning("receive from %s failed: %s", queue.name, exc)
                await asyncio.sleep(1)
                continue
            messages = response.get("Messages", [])
            metrics.observe_receive(queue, messages, metrics.now())
            if messages:
                await self.deliver(function, event, queue, url, arn, messages)

    async def _resolve(self, queue: QueueSpec) -> tuple[str, str]:
        """The queue's URL and ARN, waiting for the queue server (it may be restarting)."""
        while True:
            try:
                url = await self.queues.url(queue.logical_id)
                attributes = await self.blocking(
                    self.sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn"]
                )
                return url, attributes["Attributes"]["QueueArn"]
            except Exception as exc:
                log.warning("queue %s not reachable yet: %s", queue.name, exc)
                await asyncio.sleep(1)

    async def deliver(
        self,
        function: FunctionSpec,
        event: SqsEvent,
        queue: QueueSpec,
        url: str,
        arn: str,
        messages: list[dict[str, Any]],
    ) -> None:
        records = [sqs_record(m, arn, self.settings.aws_region) for m in messages]
        heartbeat = asyncio.create_task(self._extend_visibility(queue, url, messages))
        # A batch of one trace continues it; a mixed batch links each of its traces.
        parents = {record_traceparent(r) for r in records} - {None}
        started = time.perf_counter()
        with span(
            f"deliver {queue.name}",
            kind=SpanKind.CONSUMER,
            parent=context_from_traceparent(next(iter(parents))) if len(parents) == 1 else None,
            links=[link for p in parents if (link := link_to(p))] if len(parents) > 1 else None,
            attributes={"faas.name": function.logical_id, "messaging.batch.message_count":
                        len(messages), "messaging.destination.name": queue.name},
        ):  # fmt: skip
            try:
                response = await self.http.post(
                    self.events_url(function),
                    json={"Records": records},
                    timeout=function.timeout_s,
                    headers=dict(inject({})),
                )
                keep = self._failed_ids(response, messages, event)
                whole_batch = keep == {m["MessageId"] for m in messages} and response.is_error
            except httpx.HTTPError as exc:
                log.warning(
                    "%s failed on a batch of %d: %s", function.logical_id, len(messages), exc
                )
                keep = {m["MessageId"] for m in messages}
                whole_batch = True
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
        metrics.observe_delivery(
            function.logical_id, queue, messages, keep, time.perf_counter() - started
        )
        if whole_batch:
            # The function did not answer per message (down, or failed as a whole), so it set
            # no back-off itself: retry soon, not after the queue's visibility timeout.
            await self._back_off(queue, url, messages)
        done = [m for m in messages if m["MessageId"] not in keep]
        if done:
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ]
            await self.blocking(self.sqs.delete_message_batch, QueueUrl=url, Entries=entries)

    @staticmethod
    def _failed_ids(
        response: httpx.Response, messages: list[dict[str, Any]], event: SqsEvent
    ) -> set[str]:
        every = {m["MessageId"] for m in messages}
        if response.status_code >= 300:
            log.warning("function answered %s: the whole batch is retried", response.status_code)
            return every
        if not event.report_batch_item_failures:
            return set()
        try:
            failures = response.json().get("batchItemFailures") or []
            ids = {item["itemIdentifier"] for item in failures}
        except (ValueError, AttributeError, KeyError, TypeError):
            log.warning("malformed batch response: the whole batch is retried")
            return every
        if not ids <= every:
            log.warning("batchItemFailures names unknown ids: the whole batch is retried")
            return every
        return ids

    async def _back_off(self, queue: QueueSpec, url: str, messages: list[dict[str, Any]]) -> None:
        receives = [
            (m["ReceiptHandle"], int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)))
            for m in messages
        ]
        try:
            await back_off(
                self.sqs, url, receives, settings=self.settings, max_s=queue.visibility_timeout_s
            )
        except Exception as exc:  # they come back when the lease ends instead
            log.warning("could not back off a batch of %s: %s", queue.name, exc)

    async def _extend_visibility(
        self, queue: QueueSpec, url: str, messages: list[dict[str, Any]]
    ) -> None:
        """Renews the lease on a batch until the function answers."""
        lease = self.lease_s(queue)
        interval = max(lease / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": lease}
                for i, m in enumerate(messages)
            ]
            with contextlib.suppress(Exception):
                await self.blocking(
                    self.sqs.change_message_visibility_batch, QueueUrl=url, Entries=entries
                )

    # --- schedules and the outbox ---------------------------------------------------------------
    async def schedule(self, function: FunctionSpec, event: ScheduleEvent) -> None:
        when = next_fire(event.expression, dt.datetime.now(dt.UTC))
        while not self.stopping.is_set():
            delay = (when - dt.datetime.now(dt.UTC)).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=max(delay, 0))
                return
            await self.fire(function, event, when)
            when = next_fire(event.expression, when)

    async def fire(self, function: FunctionSpec, event: ScheduleEvent, when: dt.datetime) -> None:
        body = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.settings.aws_region,
            "resources": [f"local:schedule/{event.name}"],
            "detail": {},
        }
        with span(f"schedule {event.name}", kind=SpanKind.PRODUCER):
            try:
                response = await self.http.post(
                    self.events_url(function),
                    json=body,
                    timeout=function.timeout_s,
                    headers=dict(inject({})),
                )
                log.info("schedule %s fired: %s", event.name, response.status_code)
                outcome = "ok" if response.status_code < 300 else "failed"
            except httpx.HTTPError as exc:
                log.warning("schedule %s failed: %s", event.name, exc)
                outcome = "failed"
        metrics.SCHEDULES.labels(function.logical_id, event.name, outcome).inc()

    async def relay_outbox(self) -> None:
        while not self.stopping.is_set():
            try:
                pool = await self.db.get()
                await relay_once(pool, self.sqs, await self.queues.all_urls())
            except Exception as exc:
                log.warning("outbox relay failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), timeout=self.settings.outbox_relay_interval_s
                )

    async def sample_metrics(self) -> None:
        """Queue and DLQ depths, and the database's gauges, every METRICS_SAMPLE_INTERVAL_S;
        the first sample after one interval, so the start's re-drive goes first."""
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.stopping.wait(), timeout=self.settings.metrics_sample_interval_s
                )
            if self.stopping.is_set():
                return
            try:
                urls = {}
                for logical_id in self.template.queues:
                    with contextlib.suppress(Exception):  # not provisioned (yet)
                        urls[logical_id] = await self.queues.url(logical_id)
                await metrics.sample_queues(self.sqs, self.template, urls)
                await metrics.sample_database(self.db)
            except Exception as exc:
                log.warning("metrics sample failed: %s", exc)

    async def redrive_lost(self) -> None:
        """At start, and whenever a queue turns out to have been created again, re-drives the
        work whose messages the queue server lost (infra/dispatcher/redrive.py)."""
        while not self.stopping.is_set():
            try:
                urls = {}
                for logical_id in self.template.queues:
                    with contextlib.suppress(Exception):  # not provisioned (yet)
                        urls[logical_id] = await self.queues.url(logical_id)
                lost = await self.watch.changed(urls)
                if lost:
                    await redrive(await self.db.get(), self.settings, lost)
            except Exception as exc:
                log.warning("re-drive failed: %s", exc)
                self.watch.created.clear()  # look again next time
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=self.settings.redrive_check_s)

    async def run(self, *, relay: bool = True) -> None:
        tasks = []
        for function in self.template.functions.values():
            tasks += [asyncio.create_task(self.poll(function, e)) for e in function.sqs]
            tasks += [asyncio.create_task(self.schedule(function, e)) for e in function.schedules]
        if relay:
            tasks.append(asyncio.create_task(self.relay_outbox()))
            tasks.append(asyncio.create_task(self.redrive_lost()))
            tasks.append(asyncio.create_task(self.sample_metrics()))
        log.info("dispatching %d pollers/schedules", len(tasks))
        await self.stopping.wait()
        # In-flight batches finish (bounded by their function timeouts); polls end after one wait.
        await asyncio.gather(*tasks, return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)
        await self.http.aclose()
        await self.db.close()
