"""Helpers for the data-rights tests: export rows as the export job leaves them, and the
account_data function's queue messages delivered as the dispatcher delivers them (a batch
POSTed to its /events through the internal app)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from infra.gateway.app import internal_app
from shared.domain.account_data.exports import object_key
from shared.domain.adapters.registry import AdapterFiles
from shared.domain.chat import conversations
from tests.integration.adapterkit import candidate, connect, persona_of
from tests.integration.authkit import bearer, sign_up
from tests.integration.voicekit import clip_row


async def export_row(user_id: str, *, status: str = "ready", expires_in_s: int = 3600) -> str:
    """An export row (ready: with its key and a future expiry; no object is needed to sign a
    URL); its id. For tests of the routes that read an export."""
    export_id = str(uuid.uuid4())
    async with await connect() as conn:
        await conn.execute(
            "INSERT INTO account_export (id, user_id, status, object_key, size_bytes,"
            " finished_at, expires_at) VALUES (%s, %s, %s, %s, 22, now(),"
            " now() + make_interval(secs => %s))",
            (export_id, user_id, status, object_key(user_id, export_id), expires_in_s),
        )
    return export_id


def record(services: Any, queue: str, body: dict[str, Any], *, receive: int = 1) -> dict:
    """An SQS record of the template's `queue` (a logical id), as Lambda hands one over."""
    name = services.template.queue_name(queue)
    return {
        "messageId": str(uuid.uuid4()), "receiptHandle": uuid.uuid4().hex,
        "body": json.dumps(body), "attributes": {"ApproximateReceiveCount": str(receive)},
        "messageAttributes": {}, "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{name}",
    }  # fmt: skip


async def post_events(services: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The account_data function's /events, as the dispatcher (or Lambda) calls it."""
    app = internal_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        answer = await client.post("/functions/AccountDataFunction/events", json=event)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def deliver(services: Any, queue: str, body: dict[str, Any], *, receive: int = 1) -> list:
    """One message of `queue` through the function; the batch's item failures."""
    answer = await post_events(services, {"Records": [record(services, queue, body,
                                                             receive=receive)]})  # fmt: skip
    return list(answer["batchItemFailures"])


async def pending_message(services: Any, queue: str, key: str, value: str) -> dict[str, Any]:
    """The body of the outbox row of `queue` whose body has `key` = `value`."""
    async with services.db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT body FROM outbox_message WHERE queue = %s AND body->>%s = %s",
                (queue, key, value),
            )
        ).fetchone()
    assert row is not None, (queue, key, value)
    return dict(row[0])


ADAPTER_CONFIG = {"base_model_name_or_path": "probe", "r": 4, "lora_alpha": 8,
                  "target_modules": ["q_proj"]}  # fmt: skip


async def user_with_data(api, services) -> dict:
    """A signed-up user with a conversation and message, an uploaded file, a context,
    feedback (and so a persona adapter) with a version's files in the store, a voice clip."""
    signed = await sign_up(api)
    uid, headers = signed["user"]["id"], bearer(signed["access_token"])
    marker = uuid.uuid4().hex
    made = await api.post("/v1/conversations", headers=headers, json={"title": f"t-{marker}"})
    assert made.status_code == 201, made.text
    conversation_id = made.json()["data"]["id"]
    async with services.db.connection() as conn, conn.transaction():
        await conversations.append_message(
            conn, uid, conversation_id, sender="user", content=f"hello {marker}",
            parent_id=None, meta={},
        )  # fmt: skip
    file_bytes = f"notes {marker}\n".encode()
    uploaded = await api.post("/v1/files/upload", headers=headers,
                              files={"file": ("notes.md", file_bytes)})  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    context = await api.post("/v1/contexts", headers=headers, json={"name": f"c-{marker}"})
    assert context.status_code == 201, context.text
    adapter_id = await persona_of(uid)  # a feedback event and the persona it made
    weights = f"weights {marker}".encode()
    files = AdapterFiles({"adapter_config.json": json.dumps(ADAPTER_CONFIG).encode(),
                          "adapter_model.safetensors": weights}, "probe")  # fmt: skip
    _, prefix = await candidate(services.s3, services.bucket(), uid, adapter_id, files,
                                metrics={}, job_id=None, adapter_type="persona")  # fmt: skip
    clip_id = await clip_row(uid)
    return {
        "id": uid, "email": signed["user"]["email"], "headers": headers, "marker": marker,
        "conversation_id": conversation_id, "file_id": uploaded.json()["data"]["file"]["id"],
        "file_bytes": file_bytes, "context_id": context.json()["data"]["id"],
        "adapter_id": adapter_id, "adapter_prefix": prefix, "weights": weights,
        "clip_id": clip_id,
    }  # fmt: skip
