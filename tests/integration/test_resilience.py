"""No work lost, no double effect (issue: a stack that heals itself).

- The pool replaces a connection the server dropped instead of failing the request.
- A message that failed transiently is back within seconds (the function's back-off), not
  after the queue's visibility timeout.
- A message whose dispatcher died mid-batch is delivered again within the dispatcher's lease.
- Mail whose message the in-memory SQS server lost is re-driven from Postgres when a
  dispatcher starts, and sent exactly once however often it is delivered.
- Ingestion whose message was lost is queued again from `context_source`, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

from infra.stack.provision import provision_queues
from shared.domain.rag import reembed
from shared.platform import outbox
from shared.platform.aws import sqs_client
from shared.platform.db.pool import create_pool
from shared.platform.template import load_template
from tests.helpers import free_port, project_process, wait_for
from tests.integration.authkit import mails_to
from tests.integration.queuekit import held, queue_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def host(local_stack, migrated, settings, fixture_template, tmp_path_factory):
    """The internal function host; each test runs the dispatcher(s) it needs."""
    template = load_template(fixture_template, settings)
    provision_queues(sqs_client(settings), template)
    logs = tmp_path_factory.mktemp("resilience")
    env = {
        "TEMPLATE_PATH": str(fixture_template),
        "FUNCTIONS_INTERNAL_PORT": str(free_port()),
        "DISPATCHER_WAIT_S": "1",
        "OUTBOX_RELAY_INTERVAL_S": "0.3",
        "REDRIVE_CHECK_S": "1",
        "LOG_LEVEL": "INFO",
    }
    with project_process(
        ["-m", "infra.gateway", "--internal"],
        env=env,
        ready_url=f"http://127.0.0.1:{env['FUNCTIONS_INTERNAL_PORT']}",
        log_path=logs / "internal.log",
    ):
        yield {"env": env, "logs": logs, "template": template}


@contextlib.contextmanager
def dispatcher(host, name: str, **env: str) -> Iterator:
    with project_process(
        ["-m", "infra.dispatcher"],
        env={**host["env"], **env},
        log_path=host["logs"] / f"dispatcher-{name}.log",
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def sqs(settings):
    return sqs_client(settings)


@pytest.fixture(scope="module")
def count(settings):
    client = redis.Redis.from_url(settings.redis_dsn)
    return lambda key: int(client.get(f"fixture:{settings.stack_name}:{key}") or 0)


# --- the database pool ----------------------------------------------------------------------
async def test_the_pool_replaces_a_connection_the_server_dropped(settings, migrated) -> None:
    pool = create_pool(settings)
    await pool.open()
    try:
        async with pool.connection() as conn:
            pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
        # As after a server restart: the pooled connection is dead, the pool does not know.
        with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        async with pool.connection() as conn:  # no error: checked on checkout, replaced
            again = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone())[0]
        assert again != pid
    finally:
        await pool.close()


# --- queue back-off and the dispatcher's lease -----------------------------------------------
def test_a_transient_failure_is_retried_within_seconds(host, sqs, count) -> None:
    # FixtureLeaseQueue's visibility timeout is 600 s and the lease 30 s: three receives in a
    # few seconds can only come from the function's back-off (1-2 s, then 2-4 s).
    url = queue_url(sqs, host["template"], "FixtureLeaseQueue")
    key = f"flaky-{uuid.uuid4().hex[:8]}"
    with dispatcher(host, "backoff"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"key": key, "fail": True}))
        wait_for(lambda: count(key) >= 1, timeout_s=20, what="first receive")
        started = time.monotonic()
        wait_for(lambda: count(key) >= 3, timeout_s=20, what="two retries")
        assert time.monotonic() - started < 12
    sqs.purge_queue(QueueUrl=url)


def test_a_message_held_by_a_dead_dispatcher_comes_back_within_the_lease(host, sqs, count) -> None:
    url = queue_url(sqs, host["template"], "FixtureLeaseQueue")
    key = f"slow-{uuid.uuid4().hex[:8]}"
    with dispatcher(host, "doomed", DISPATCHER_LEASE_S="3") as doomed:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"key": key, "sleep": 6}))
        wait_for(lambda: count(key) >= 1, timeout_s=20, what="first delivery under way")
        doomed.kill()  # kill -9 mid-batch: nobody renews its lease or deletes the message
        doomed.wait()
    with dispatcher(host, "heir", DISPATCHER_LEASE_S="3"):
        # Not after the queue's 600 s visibility timeout: within the 3 s lease.
        wait_for(lambda: count(key) >= 2, timeout_s=15, what="delivered again")
        wait_for(lambda: held(sqs, url) == 0, timeout_s=30, what="done and deleted")
    assert count(key) == 2


def test_a_message_whose_function_died_mid_batch_is_delivered_again(host, sqs, count) -> None:
    """kill -9 of the function host while it handles a message: the dispatcher's call fails,
    the message comes back after the back-off (not the visibility timeout), and once a host
    answers again it is handled and deleted: delivered twice, lost never."""
    url = queue_url(sqs, host["template"], "FixtureLeaseQueue")
    key = f"host-{uuid.uuid4().hex[:8]}"
    env = {**host["env"], "FUNCTIONS_INTERNAL_PORT": str(free_port())}
    ready = f"http://127.0.0.1:{env['FUNCTIONS_INTERNAL_PORT']}"

    def function_host(name: str):
        return project_process(["-m", "infra.gateway", "--internal"], env=env, ready_url=ready,
                               log_path=host["logs"] / f"internal-{name}.log")  # fmt: skip

    with dispatcher(host, "host-dies", **env):
        with function_host("doomed") as doomed:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"key": key, "sleep": 4}))
            wait_for(lambda: count(key) >= 1, timeout_s=20, what="first delivery under way")
            doomed.kill()
            doomed.wait()
        killed = time.monotonic()
        with function_host("heir"):
            wait_for(lambda: count(key) >= 2, timeout_s=30, what="delivered again")
            recovered_s = time.monotonic() - killed
            wait_for(lambda: held(sqs, url) == 0, timeout_s=30, what="done and deleted")
    assert count(key) == 2
    print(f"\nfunction host killed mid-message: delivered again {recovered_s:.1f} s later")


# --- re-drive after the queue server lost its messages ----------------------------------------
async def _user(pool) -> tuple[str, str]:
    address = f"{uuid.uuid4().hex[:10]}@example.test"
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text", (address,)
            )
        ).fetchone()
    return row[0], address


def _lose_messages(sqs, template, logical_id: str) -> None:
    """What a restart of the in-memory SQS server does: the queue is gone with its messages
    and is created again (a second later, so its CreatedTimestamp differs)."""
    sqs.delete_queue(QueueUrl=queue_url(sqs, template, logical_id))
    time.sleep(1.1)
    provision_queues(sqs, template)


async def test_lost_mail_is_redriven_and_sent_exactly_once(host, settings, sqs) -> None:
    template = host["template"]
    pool = create_pool(settings)
    await pool.open()
    try:
        user_id, address = await _user(pool)
        async with pool.connection() as conn, conn.transaction():
            outbox_id = await outbox.enqueue(
                conn, queue="MailQueue", body={"kind": "verify_email", "user_id": user_id}
            )
        # Relayed to the queue while no dispatcher runs, then lost with the queue server.
        urls = {k: queue_url(sqs, template, k) for k in template.queues}
        await outbox.relay_once(pool, sqs, urls)
        _lose_messages(sqs, template, "MailQueue")
        mail_url = queue_url(sqs, template, "MailQueue")
        assert held(sqs, mail_url) == 0
        with dispatcher(host, "after-restart"):
            wait_for(lambda: mails_to(settings.mail_dir, address, "verify_email"),
                     timeout_s=30, what="re-driven mail sent")  # fmt: skip
            # A redelivery of the same outbox message (at-least-once) sends nothing more.
            sqs.send_message(
                QueueUrl=mail_url,
                MessageBody=json.dumps({"kind": "verify_email", "user_id": user_id}),
                MessageAttributes={
                    "outbox_id": {"DataType": "Number", "StringValue": str(outbox_id)}
                },
            )
            wait_for(lambda: held(sqs, mail_url) == 0, timeout_s=20, what="redelivery done")
        with dispatcher(host, "next-start"):  # a later start re-drives nothing: it is done
            await asyncio.sleep(4)
        assert len(mails_to(settings.mail_dir, address, "verify_email")) == 1
        async with pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT done_at IS NOT NULL FROM outbox_message WHERE id = %s", (outbox_id,)
                )
            ).fetchone()
        assert row == (True,)
        logged = (host["logs"] / "dispatcher-after-restart.log").read_text()
        assert "re-driven from Postgres" in logged
    finally:
        await pool.close()


async def test_lost_ingestion_is_queued_again_once(settings, migrated) -> None:
    pool = create_pool(settings)
    await pool.open()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    lost_before = long_ago + dt.timedelta(hours=1)
    try:
        user_id, _ = await _user(pool)
        async with pool.connection() as conn, conn.transaction():
            context = (
                await (
                    await conn.execute(
                        "INSERT INTO knowledge_context (owner_user_id, name) VALUES (%s, 'c')"
                        " RETURNING id::text",
                        (user_id,),
                    )
                ).fetchone()
            )[0]
            sources = {}
            for name, status in (("lost", "processing"), ("unsent", "pending"), ("done", "ready")):
                file_id = (
                    await (
                        await conn.execute(
                            "INSERT INTO user_file (owner_user_id, name, object_key, kind)"
                            " VALUES (%s, %s, %s, 'text') RETURNING id::text",
                            (user_id, name, f"users/{user_id}/files/{uuid.uuid4()}/{name}"),
                        )
                    ).fetchone()
                )[0]
                sources[name] = (
                    await (
                        await conn.execute(
                            "INSERT INTO context_source (context_id, fs_path, file_id, status,"
                            " queued_at) VALUES (%s, %s, %s, %s, %s) RETURNING id::text",
                            (context, name, file_id, status, long_ago),
                        )
                    ).fetchone()
                )[0]
            # "unsent": its message is still in the outbox, so the relay will send it.
            await outbox.enqueue(conn, queue="IngestQueue", body={"source_id": sources["unsent"]})

        async def redrive() -> None:
            async with pool.connection() as conn, conn.transaction():
                await reembed.redrive_lost(
                    conn, version=settings.rag_embedding_version, lost_before=lost_before
                )

        await redrive()
        await redrive()  # a second dispatcher, or a second start: nothing more
        async with pool.connection() as conn:
            queued = await (
                await conn.execute(
                    "SELECT body->>'source_id', count(*) FROM outbox_message"
                    " WHERE queue = 'IngestQueue' AND body->>'source_id' = ANY(%s)"
                    " GROUP BY 1",
                    (list(sources.values()),),
                )
            ).fetchall()
            status = dict(
                await (
                    await conn.execute(
                        "SELECT id::text, status FROM context_source WHERE id = ANY(%s)",
                        (list(sources.values()),),
                    )
                ).fetchall()
            )
        assert dict(queued) == {sources["lost"]: 1, sources["unsent"]: 1}
        assert status[sources["lost"]] == "pending"
        assert status[sources["done"]] == "ready"
    finally:
        async with pool.connection() as conn:  # no stray ingestion for later dispatchers
            await conn.execute("DELETE FROM app_user WHERE id = %s", (user_id,))
        await pool.close()
