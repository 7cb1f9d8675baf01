"""The retention function (functions/retention) on the real stack: sent outbox rows past their
days go while pending ones and a queued training job's message stay; uploads never completed,
multipart uploads never finished and objects no row names go once past the scratch TTL, while
young scratch, owned objects and other prefixes stay. A second run finds nothing more.

The object-store parts run against a bucket of this test's own, so nothing else of the session
is in reach; the outbox part is checked on this test's own rows."""

from __future__ import annotations

import uuid

import httpx
import pytest
from psycopg.types.json import Jsonb

from functions.retention import outbox, scratch
from infra.gateway.app import internal_app
from infra.stack.provision import delete_bucket
from shared.domain.preferences.schedule import TRAIN_QUEUE
from shared.services import Services

pytestmark = pytest.mark.integration
DAY_S = 86_400.0


@pytest.fixture(scope="module")
async def services(migrated, settings):
    made = Services.from_settings(settings)
    yield made
    await made.aclose()


@pytest.fixture
def bucket(services, settings):
    name = f"{settings.stack_name}-retention-{uuid.uuid4().hex[:8]}"
    services.s3.create_bucket(Bucket=name)
    yield name
    delete_bucket(services.s3, name)


async def _user(conn) -> str:
    row = await (
        await conn.execute(
            "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text",
            (f"{uuid.uuid4().hex}@example.test",),
        )
    ).fetchone()
    return row[0]


async def _outbox_row(conn, *, queue: str, sent_days_ago: float | None, body=None) -> int:
    row = await (
        await conn.execute(
            "INSERT INTO outbox_message (queue, body, dedup_key, created_at, sent_at)"
            " VALUES (%s, %s, %s, now() - make_interval(days => 30),"
            " now() - make_interval(secs => %s)) RETURNING id",
            (
                queue,
                Jsonb(body or {}),
                f"retention-test:{uuid.uuid4()}",
                None if sent_days_ago is None else sent_days_ago * DAY_S,
            ),
        )
    ).fetchone()
    return row[0]


async def _training_job(conn, user_id: str, status: str) -> str:
    adapter = await (
        await conn.execute(
            "INSERT INTO artifact (owner_user_id, type, name, schema) VALUES"
            " (%s, 'adapter', %s, '{}') RETURNING id",
            (user_id, f"persona-{uuid.uuid4().hex[:6]}"),
        )
    ).fetchone()
    row = await (
        await conn.execute(
            "INSERT INTO training_job (adapter_id, user_id, status) VALUES (%s, %s, %s)"
            " RETURNING id::text",
            (adapter[0], user_id, status),
        )
    ).fetchone()
    return row[0]


async def _remaining(conn, ids: list[int]) -> set[int]:
    rows = await (
        await conn.execute("SELECT id FROM outbox_message WHERE id = ANY(%s)", (ids,))
    ).fetchall()
    return {row[0] for row in rows}


async def test_sent_outbox_rows_past_their_days_are_deleted_and_pending_work_stays(services):
    async with services.db.connection() as conn:
        user_id = await _user(conn)
        queued_job = await _training_job(conn, user_id, "queued")
        done_job = await _training_job(conn, user_id, "succeeded")
        old_sent = await _outbox_row(conn, queue="MailQueue", sent_days_ago=8)
        old_unsent = await _outbox_row(conn, queue="MailQueue", sent_days_ago=None)
        recent_sent = await _outbox_row(conn, queue="IngestQueue", sent_days_ago=2)
        queued_train = await _outbox_row(
            conn, queue=TRAIN_QUEUE, sent_days_ago=9, body={"job_id": queued_job}
        )
        done_train = await _outbox_row(
            conn, queue=TRAIN_QUEUE, sent_days_ago=9, body={"job_id": done_job}
        )
        odd_body = await _outbox_row(
            conn, queue=TRAIN_QUEUE, sent_days_ago=9, body={"job_id": "-" * 36}
        )
    mine = [old_sent, old_unsent, recent_sent, queued_train, done_train, odd_body]
    # Batches of 2: the loop, not one statement, has to get through them.
    deleted = await outbox.prune_sent(services.db, older_than_days=7, batch=2, max_batches=50)
    assert deleted >= 3
    async with services.db.connection() as conn:
        assert await _remaining(conn, mine) == {old_unsent, recent_sent, queued_train}
    again = await outbox.prune_sent(services.db, older_than_days=7, batch=2, max_batches=50)
    assert again == 0
    async with services.db.connection() as conn:
        assert await _remaining(conn, mine) == {old_unsent, recent_sent, queued_train}


def _keys(s3, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


async def test_objects_no_row_names_go_once_past_the_ttl(services, bucket):
    s3 = services.s3
    async with services.db.connection() as conn:
        user_id = await _user(conn)
        clip_key = f"users/{user_id}/voice/{uuid.uuid4()}.wav"
        await conn.execute(
            "INSERT INTO voice_clips (user_id, object_key, mime, size_bytes, duration_s)"
            " VALUES (%s, %s, 'audio/wav', 4, 1.0)",
            (user_id, clip_key),
        )
        file_key = f"users/{user_id}/files/{uuid.uuid4()}/notes.txt"
        await conn.execute(
            "INSERT INTO user_file (owner_user_id, name, object_key, kind, status)"
            " VALUES (%s, 'notes.txt', %s, 'text', 'stored')",
            (user_id, file_key),
        )
    stray_clip = f"users/{user_id}/voice/{uuid.uuid4()}.wav"
    stray_file = f"users/{user_id}/files/{uuid.uuid4()}/lost.txt"
    adapter = f"users/{user_id}/adapters/{uuid.uuid4()}/v0001/adapter_config.json"
    elsewhere = "jax-cache/some-key/program.bin"
    everything = {clip_key, file_key, stray_clip, stray_file, adapter, elsewhere}
    for key in everything:
        s3.put_object(Bucket=bucket, Key=key, Body=b"data")

    young = await scratch.stray_objects(services.db, s3, bucket, older_than_s=DAY_S, max_batches=10)
    assert young == 0 and _keys(s3, bucket) == everything
    # A cutoff a minute ahead makes every object "old": only ownership decides now.
    swept = await scratch.stray_objects(services.db, s3, bucket, older_than_s=-60, max_batches=10)
    assert swept == 2
    assert _keys(s3, bucket) == everything - {stray_clip, stray_file}
    assert (
        await scratch.stray_objects(services.db, s3, bucket, older_than_s=-60, max_batches=10) == 0
    )


async def test_uploads_never_completed_go_with_their_objects(services, bucket):
    s3 = services.s3
    async with services.db.connection() as conn:
        user_id = await _user(conn)
        keys = {
            name: f"users/{user_id}/files/{uuid.uuid4()}/{name}.txt"
            for name in ("abandoned", "in_flight", "stored")
        }
        for name, status, age_days in (
            ("abandoned", "uploading", 2),
            ("in_flight", "uploading", 0),
            ("stored", "stored", 2),
        ):
            await conn.execute(
                "INSERT INTO user_file (owner_user_id, name, object_key, kind, status, created_at)"
                " VALUES (%s, %s, %s, 'text', %s, now() - make_interval(days => %s))",
                (user_id, f"{name}.txt", keys[name], status, age_days),
            )
            s3.put_object(Bucket=bucket, Key=keys[name], Body=b"bytes")
    removed = await scratch.abandoned_uploads(
        services.db, s3, bucket, older_than_s=DAY_S, batch=1000, max_batches=10
    )
    assert removed >= 1
    async with services.db.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT name FROM user_file WHERE owner_user_id = %s ORDER BY name", (user_id,)
            )
        ).fetchall()
    assert [row[0] for row in rows] == ["in_flight.txt", "stored.txt"]
    assert _keys(s3, bucket) == {keys["in_flight"], keys["stored"]}


async def test_multipart_uploads_never_finished_are_aborted(services, bucket):
    s3 = services.s3
    key = f"users/{uuid.uuid4()}/files/{uuid.uuid4()}/big.txt"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1024)
    assert (
        await scratch.stale_multipart_uploads(s3, bucket, older_than_s=DAY_S, max_batches=10) == 0
    )
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [
        upload
    ]
    assert await scratch.stale_multipart_uploads(s3, bucket, older_than_s=-60, max_batches=10) == 1
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_the_schedule_reaches_the_function_through_the_internal_host(services):
    """The event the dispatcher (or EventBridge) sends, to the route it posts to; the
    settings' defaults apply (OUTBOX_RETENTION_DAYS 7)."""
    async with services.db.connection() as conn:
        old = await _outbox_row(conn, queue="MailQueue", sent_days_ago=8)
        recent = await _outbox_row(conn, queue="MailQueue", sent_days_ago=6)
    app = internal_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        answer = await client.post(
            "/functions/RetentionFunction/events",
            json={"source": "aws.events", "detail-type": "Scheduled Event"},
        )
    assert answer.status_code == 200, answer.text
    counts = answer.json()["data"]
    assert set(counts) == {
        "outbox_deleted",
        "uploads_abandoned",
        "multipart_aborted",
        "stray_objects_deleted",
    }
    assert counts["outbox_deleted"] >= 1
    async with services.db.connection() as conn:
        assert await _remaining(conn, [old, recent]) == {recent}
