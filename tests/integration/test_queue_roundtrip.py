"""The queue path end to end, through real processes: the dispatcher long-polls moto SQS and
POSTs batches to the internal function host, which runs a fixture queue function; the public
gateway streams a fixture SSE function. The fixture functions live under tests/ only."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import psycopg
import pytest
import redis

from shared.platform.aws import sqs_client
from shared.platform.db.pool import create_pool
from shared.platform.outbox import enqueue
from shared.platform.template import load_template
from tests.helpers import free_port, project_process, wait_for
from tests.integration.queuekit import held, queue_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def processes(local_stack, migrated, settings, fixture_template, tmp_path_factory):
    """Provisions the fixture queues, then runs the internal host, dispatcher and gateway."""
    from infra.stack.provision import provision_queues

    template = load_template(fixture_template, settings)
    provision_queues(sqs_client(settings), template)
    logs = tmp_path_factory.mktemp("logs")
    internal_port, gateway_port = free_port(), free_port()
    env = {
        "TEMPLATE_PATH": str(fixture_template),
        "FUNCTIONS_INTERNAL_PORT": str(internal_port),
        "GATEWAY_PORT": str(gateway_port),
        "DISPATCHER_WAIT_S": "1",
        "OUTBOX_RELAY_INTERVAL_S": "0.3",
        "LOG_LEVEL": "INFO",
    }
    internal = f"http://127.0.0.1:{internal_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    with (
        project_process(
            ["-m", "infra.gateway", "--internal"],
            env=env,
            ready_url=internal,
            log_path=logs / "internal.log",
        ),
        project_process(
            ["-m", "infra.gateway"], env=env, ready_url=gateway, log_path=logs / "gateway.log"
        ),
        project_process(["-m", "infra.dispatcher"], env=env, log_path=logs / "dispatcher.log"),
    ):
        yield {"template": template, "gateway": gateway, "logs": logs}


@pytest.fixture(scope="module")
def sqs(settings):
    return sqs_client(settings)


@pytest.fixture(scope="module")
def counts(settings):
    client = redis.Redis.from_url(settings.redis_dsn)

    def count(key: str) -> int:
        return int(client.get(f"fixture:{settings.stack_name}:{key}") or 0)

    return count


def test_a_message_is_processed_once_and_deleted(processes, sqs, counts) -> None:
    url = queue_url(sqs, processes["template"], "FixtureQueue")
    key = f"ok-{uuid.uuid4().hex[:8]}"
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"key": key}))
    wait_for(lambda: counts(key) >= 1, timeout_s=20, what="message processed")
    # Past one visibility timeout (6 s) an undeleted message would have come back.
    time.sleep(7)
    assert counts(key) == 1
    assert held(sqs, url) == 0


def test_a_failing_message_is_retried_then_dead_lettered_without_failing_its_batch(
    processes, sqs, counts
) -> None:
    template = processes["template"]
    url = queue_url(sqs, template, "FixtureQueue")
    dlq = queue_url(sqs, template, "FixtureDeadLetterQueue")
    run = uuid.uuid4().hex[:8]
    keys = {"good1": f"g1-{run}", "bad": f"bad-{run}", "good2": f"g2-{run}"}
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "1", "MessageBody": json.dumps({"key": keys["good1"]})},
            {"Id": "2", "MessageBody": json.dumps({"key": keys["bad"], "fail": True})},
            {"Id": "3", "MessageBody": json.dumps({"key": keys["good2"]})},
        ],
    )
    max_receive = template.queues["FixtureQueue"].max_receive_count
    found = wait_for(
        lambda: sqs.receive_message(
            QueueUrl=dlq, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages"),
        timeout_s=40,
        interval_s=0.5,
        what="failed message in the DLQ",
    )
    message = found[0]
    assert json.loads(message["Body"]) == {"key": keys["bad"], "fail": True}
    attributes = message["MessageAttributes"]
    assert "asked to fail" in attributes["failure_reason"]["StringValue"]
    assert attributes["source_queue"]["StringValue"] == template.queue_name("FixtureQueue")
    assert counts(keys["bad"]) == max_receive  # retried up to maxReceiveCount, no more
    assert counts(keys["good1"]) == 1 and counts(keys["good2"]) == 1  # the batch was not failed
    # The function reported the dead-lettered message as handled, so the dispatcher deletes it.
    wait_for(lambda: held(sqs, url) == 0, timeout_s=10, what="source queue drained")


def test_queue_functions_are_not_reachable_through_the_gateway(processes) -> None:
    body = {"Records": []}
    for path in ("/events", "/functions/FixtureQueueFunction/events"):
        response = httpx.post(processes["gateway"] + path, json=body)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_outbox_rows_are_sent_only_after_commit(processes, settings, counts) -> None:
    run = uuid.uuid4().hex[:8]
    rolled_back, committed = f"rolled-{run}", f"committed-{run}"
    pool = create_pool(settings)
    async with pool, pool.connection() as conn:
        async with conn.transaction(force_rollback=True):
            await enqueue(conn, queue="FixtureQueue", body={"key": rolled_back})
        async with conn.transaction():
            await enqueue(conn, queue="FixtureQueue", body={"key": committed}, dedup_key=committed)
            # A second enqueue of the same business key is a no-op.
            assert (
                await enqueue(
                    conn, queue="FixtureQueue", body={"key": committed}, dedup_key=committed
                )
                is None
            )
    wait_for(lambda: counts(committed) >= 1, timeout_s=20, what="committed outbox row delivered")
    await asyncio.sleep(1)
    assert counts(committed) == 1
    assert counts(rolled_back) == 0
    with psycopg.connect(settings.postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT body->>'key', sent_at IS NOT NULL FROM outbox_message"
            " WHERE body->>'key' IN (%s, %s)",
            (rolled_back, committed),
        ).fetchall()
    assert rows == [(committed, True)]


def test_sse_streams_through_the_gateway_event_by_event(processes) -> None:
    arrivals = []
    with httpx.stream("GET", processes["gateway"] + "/v1/fixture/stream", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("event:"):
                arrivals.append((line.split(":", 1)[1].strip(), time.monotonic()))
    assert [name for name, _ in arrivals] == ["token", "token", "token", "message_done"]
    # The function pauses 0.5 s between events: a buffered relay would deliver them together.
    assert arrivals[-1][1] - arrivals[0][1] > 1.0
