"""The dispatcher's long-polls all wait on SQS at the same time: each holds a thread of the
dispatcher's own pool for the whole wait, so none queues behind another (asyncio's default
pool has CPUs + 4 threads, fewer than the template's polls on a small machine, and queued
polls delayed every queue's messages by whole poll waits).

The fake SQS client's receive holds each caller at a barrier sized to the template's polls:
it opens only if every poll is inside receive at once, and breaks (failing the test) if not."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from infra.dispatcher.app import Dispatcher
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import load_template

BARRIER_S = 30.0  # a deadline for a broken barrier, not a timing threshold


class _Sqs:
    def __init__(self, parties: int):
        self.barrier = threading.Barrier(parties, timeout=BARRIER_S)
        self.met = threading.Event()
        self.broken = threading.Event()

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"http://sqs.local/{QueueName}"}

    def get_queue_attributes(self, QueueUrl: str, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:local:0:{QueueUrl.rsplit('/', 1)[1]}"}}

    def receive_message(self, **_: Any) -> dict[str, Any]:
        if not self.met.is_set():
            try:
                self.barrier.wait()
                self.met.set()
            except threading.BrokenBarrierError:
                self.broken.set()
        return {"Messages": []}


async def test_every_poll_waits_on_sqs_at_once() -> None:
    settings = Settings(_env_file=None, dispatcher_wait_s=1)
    template = load_template(REPO_ROOT / "template.yaml", settings)
    polls = [(f, e) for f in template.functions.values() for e in f.sqs]
    assert len(polls) > 6  # more than the default pool would run at once on two cores
    sqs = _Sqs(len(polls))
    dispatcher = Dispatcher(settings, template, sqs)
    assert dispatcher.pollers == len(polls)
    tasks = [asyncio.create_task(dispatcher.poll(f, e)) for f, e in polls]
    try:
        met = await asyncio.to_thread(sqs.met.wait, BARRIER_S + 5)
        assert met and not sqs.broken.is_set(), "the polls did not all wait on SQS at once"
    finally:
        dispatcher.stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        dispatcher.executor.shutdown(wait=False, cancel_futures=True)
        await dispatcher.http.aclose()
