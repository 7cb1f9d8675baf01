"""Helpers for files/RAG tests: the queue workers pointed at the session's inference service
(ingestion embeds through it), uploads, waiting for ingestion, reading the ingest DLQ."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.platform.aws import sqs_client
from shared.platform.settings import get_settings
from shared.platform.template import load_template
from tests.helpers import free_port, project_process
from tests.integration.conftest import TOKEN

FILES = Path(__file__).resolve().parents[1] / "data" / "files"


@pytest.fixture(scope="module")
def ingest_workers(migrated, service, tmp_path_factory):
    """The internal function host and the dispatcher, as real processes, with the ingest
    function embedding through this session's inference service."""
    logs = tmp_path_factory.mktemp("ingest-workers")
    port = free_port()
    env = {"FUNCTIONS_INTERNAL_PORT": str(port), "DISPATCHER_WAIT_S": "1",
           "OUTBOX_RELAY_INTERVAL_S": "0.3", "LOG_LEVEL": "INFO",
           "INFERENCE_URL": service, "INFERENCE_TOKEN": TOKEN}  # fmt: skip
    with (
        project_process(["-m", "infra.gateway", "--internal"], env=env,
                        ready_url=f"http://127.0.0.1:{port}", log_path=logs / "internal.log"),
        project_process(["-m", "infra.dispatcher"], env=env, log_path=logs / "dispatcher.log"),
    ):  # fmt: skip
        yield logs


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, data: bytes | None = None,
    **fields: Any,
) -> httpx.Response:  # fmt: skip
    """POST /v1/files/upload with `data` (default: the fixture file of that name)."""
    body = data if data is not None else (FILES / name).read_bytes()
    form = {k: str(v) for k, v in fields.items() if v is not None}
    return await client.post("/v1/files/upload", headers=headers, data=form,
                             files={"file": (name, body, "application/octet-stream")})  # fmt: skip


async def new_context(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    made = await client.post("/v1/contexts", headers=headers, json={"name": "notes", **body})
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


async def wait_ingested(
    client: httpx.AsyncClient, headers: dict[str, str], context_id: str, *, timeout_s: float = 240
) -> dict[str, Any]:
    """The context's stats once nothing is pending or processing."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await client.get(f"/v1/contexts/{context_id}/stats", headers=headers)
        assert answer.status_code == 200, answer.text
        stats = answer.json()["data"]
        busy = stats["ingestion"]["pending"] + stats["ingestion"]["processing"]
        if busy == 0 and stats["files"] > 0:
            return dict(stats)
        assert time.monotonic() < deadline, f"ingestion still busy: {stats}"
        await asyncio.sleep(0.5)


def dead_letters(settings: Any, source_id: str, *, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Messages for `source_id` in the ingest DLQ, with their attributes."""
    template = load_template(settings.template_path, settings)
    sqs = sqs_client(settings)
    url = sqs.get_queue_url(QueueName=template.queues["IngestDeadLetterQueue"].name)["QueueUrl"]
    deadline, found = time.monotonic() + timeout_s, []
    while not found and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"], VisibilityTimeout=0)  # fmt: skip
        for message in got.get("Messages", []):
            if json.loads(message["Body"]).get("source_id") == source_id:
                found.append(message)
    return found


async def chunk_row(context_id: str, file_id: str | None, content: str, *,
                    heading: str | None = None, page: int | None = None) -> str:  # fmt: skip
    """A knowledge_chunk row as ingestion leaves it (a constant embedding: nothing here
    searches it); its id. For tests of the routes that read one chunk without the model."""
    async with await psycopg.AsyncConnection.connect(
        get_settings().postgres_dsn, autocommit=True
    ) as conn:
        row = await (
            await conn.execute(
                "INSERT INTO knowledge_chunk (context_id, fs_path, chunk_index, content, embedding,"
                " file_id, embedding_version, char_start, char_end, token_count, heading, page)"
                " SELECT k.id, coalesce(f.name, 'inline.txt'), 0, %s, %s::vector, f.id,"
                " k.embedding_version, 0, %s, 8, %s, %s FROM knowledge_context k"
                " LEFT JOIN user_file f ON f.id = %s::uuid WHERE k.id = %s RETURNING id",
                (content, "[" + ",".join(["1"] + ["0"] * 383) + "]", len(content), heading,
                 page, file_id, context_id),
            )
        ).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])
