"""The dispatcher's metrics: deliveries and their outcomes per function and queue, queue and DLQ
depths, the age of the oldest message, and the product's gauges from Postgres
(shared/platform/ops_metrics.py). Served on a loopback listener of its own
(`DISPATCHER_METRICS_PORT`, default 9464; 0: off).

Why a listener here rather than pushing into the gateway: the dispatcher is a separate process
(the gateway may be down, or restarting, exactly when queues back up), Prometheus pulls, and
prometheus_client's own server is one call and a thread. Loopback only: nothing here is for the
network, and a scraper on another machine reaches it through the box's agent or a tunnel.

Oldest-message age: SQS has no such queue attribute (CloudWatch derives
ApproximateAgeOfOldestMessage itself), and peeking would spend a receive of the DLQ budget. So
the age is that of the oldest message in the last batch the dispatcher received from the queue
(now minus its SentTimestamp), and 0 after a receive that came back empty: how long work waited
before a consumer took it, which is what a backlog alarm wants.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from shared.platform.db.pool import PoolHolder
from shared.platform.ops_metrics import sample
from shared.platform.template import QueueSpec, Template

log = logging.getLogger("dispatcher.metrics")

DELIVERIES = Counter(
    "acs_dispatcher_deliveries",
    "Batches delivered to a function: ok, partial (some messages failed) or failed (all)",
    ["function", "queue", "outcome"],
)
MESSAGES = Counter(
    "acs_dispatcher_messages",
    "Messages by outcome: done (deleted), retried, or dead_lettered (their last receive failed)",
    ["function", "queue", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "acs_dispatcher_delivery_duration_seconds", "A batch's time in its function", ["function"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)  # fmt: skip
SCHEDULES = Counter(
    "acs_dispatcher_schedule_fires",
    "Schedules fired, by outcome",
    ["function", "schedule", "outcome"],
)
QUEUE_MESSAGES = Gauge(
    "acs_queue_messages",
    "SQS's approximate counts: visible, in_flight (NotVisible) and delayed",
    ["queue", "state"],
)
DLQ_MESSAGES = Gauge(
    "acs_dlq_messages", "Messages in a dead-letter queue", ["queue", "source_queue"]
)
OLDEST_AGE = Gauge(
    "acs_queue_oldest_message_age_seconds",
    "Age of the oldest message in the last batch received from the queue (0: it was empty)",
    ["queue"],
)
TRAINING_JOBS = Gauge("acs_training_jobs", "Training jobs by status", ["status"])
TRAINING_FAILED = Gauge("acs_training_jobs_failed_15m", "Training jobs failed in 15 minutes")
INGESTION_PENDING = Gauge("acs_ingestion_pending", "Files waiting to be ingested")
INGESTION_LAG = Gauge(
    "acs_ingestion_lag_seconds", "Age of the oldest file waiting to be ingested (0: none)"
)
OUTBOX_PENDING = Gauge("acs_outbox_pending", "Outbox rows due and not sent")
OUTBOX_LAG = Gauge("acs_outbox_lag_seconds", "Age of the oldest due outbox row not sent")


def serve(port: int) -> None:
    """Starts the loopback listener; a port in use (a second dispatcher, in tests) is logged,
    not fatal: dispatching matters more than its metrics."""
    if port <= 0:
        return
    try:
        start_http_server(port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%d/metrics", port)
    except OSError as exc:
        log.warning("metrics listener on port %d not started: %s", port, exc)


def observe_receive(queue: QueueSpec, messages: list[dict[str, Any]], now: float) -> None:
    sent = [
        int(m["Attributes"]["SentTimestamp"])
        for m in messages
        if "SentTimestamp" in m.get("Attributes", {})
    ]
    OLDEST_AGE.labels(queue.name).set(max(now - min(sent) / 1000, 0.0) if sent else 0.0)


def observe_delivery(
    function: str,
    queue: QueueSpec,
    messages: list[dict[str, Any]],
    kept: set[str],
    duration_s: float,
) -> None:
    """`kept`: the ids left on the queue (failed). A kept message on its last receive goes to
    the DLQ by the queue's redrive policy."""
    outcome = "ok" if not kept else ("failed" if len(kept) == len(messages) else "partial")
    DELIVERIES.labels(function, queue.name, outcome).inc()
    DELIVERY_SECONDS.labels(function).observe(duration_s)
    for message in messages:
        if message["MessageId"] not in kept:
            MESSAGES.labels(function, queue.name, "done").inc()
            continue
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        last = queue.max_receive_count is not None and receives >= queue.max_receive_count
        MESSAGES.labels(function, queue.name, "dead_lettered" if last else "retried").inc()


async def sample_queues(sqs: Any, template: Template, urls: dict[str, str]) -> None:
    """Depth of every queue of the template, and of each DLQ under its source queue's name.
    One worker thread for all the calls: the pollers' long polls hold most of the default
    executor's threads, and the re-driver's calls must not wait behind a dozen of ours."""
    await asyncio.to_thread(_sample_queues, sqs, template, urls)


def _sample_queues(sqs: Any, template: Template, urls: dict[str, str]) -> None:
    sources = {q.dead_letter_queue: q for q in template.queues.values() if q.dead_letter_queue}
    for logical_id, url in urls.items():
        queue = template.queues[logical_id]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        QUEUE_MESSAGES.labels(queue.name, "visible").set(visible)
        QUEUE_MESSAGES.labels(queue.name, "in_flight").set(
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        )
        QUEUE_MESSAGES.labels(queue.name, "delayed").set(
            int(attributes.get("ApproximateNumberOfMessagesDelayed", 0))
        )
        if logical_id in sources:
            DLQ_MESSAGES.labels(queue.name, sources[logical_id].name).set(visible)


async def sample_database(db: PoolHolder) -> None:
    ops = await sample(await db.get())
    TRAINING_JOBS.clear()  # a status with no row left reads 0, not its last count
    for status, count in ops.training_jobs.items():
        TRAINING_JOBS.labels(status).set(count)
    TRAINING_FAILED.set(ops.training_failed_15m)
    INGESTION_PENDING.set(ops.ingestion_pending)
    INGESTION_LAG.set(ops.ingestion_lag_s)
    OUTBOX_PENDING.set(ops.outbox_pending)
    OUTBOX_LAG.set(ops.outbox_lag_s)


def now() -> float:
    return time.time()
