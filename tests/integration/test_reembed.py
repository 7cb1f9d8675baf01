"""Ingestion hygiene on the real stack (SPEC §18): an encoder bump re-embeds beside the old
chunks and switches a context over only when it is ready; a source stuck in pending is queued
again. Ingestion runs in-process here (the ingest function's own code), embedding through the
session's inference service."""

from __future__ import annotations

import pytest

from shared.domain.rag import ingest, reembed
from shared.services import Services
from tests.integration.chatkit import chat_api, user  # noqa: F401 - fixture
from tests.integration.ragkit import new_context, upload

pytestmark = pytest.mark.integration


async def run_ingest(services: Services, source_id: str, version: str) -> ingest.Outcome:
    return await ingest.ingest_source(
        services.db, services.s3, services.bucket(), services.llm, source_id,
        version=version, max_bytes=1 << 20, batch=8,
    )  # fmt: skip


async def one(services: Services, sql: str, *args) -> tuple:
    async with services.db.connection() as conn:
        row = await (await conn.execute(sql, args)).fetchone()
    return tuple(row) if row else ()


async def test_encoder_bump_switches_over_when_ready(chat_api, model_services):  # noqa: F811
    svc = model_services
    api = chat_api
    _, headers = await user(api)
    context_id = await new_context(api, headers)
    old = svc.settings.rag_embedding_version
    sent = await upload(api, headers, "guide.md", context_id=context_id)
    file_id = sent.json()["data"]["file"]["id"]
    (source_id,) = await one(svc, "SELECT id::text FROM context_source WHERE file_id = %s", file_id)
    first = await run_ingest(svc, source_id, old)
    assert first.status == "ready" and first.chunks > 0
    redelivered = await run_ingest(svc, source_id, old)
    assert redelivered.status == "unchanged"  # a redelivery: no rewrite

    async with svc.db.connection() as conn, conn.transaction():
        queued = await reembed.queue_reembed(conn, version="encoder-v2", limit=10,
                                             context_id=context_id)  # fmt: skip
        assert queued == 1
        assert await reembed.switch_ready(conn, version="encoder-v2", context_id=context_id) == []
    hits = await api.post(f"/v1/contexts/{context_id}/search", headers=headers,
                          json={"query": "sourdough feeding ratio"})  # fmt: skip
    assert hits.json()["data"]["hits"], "the old chunks serve until the switch"

    second = await run_ingest(svc, source_id, "encoder-v2")
    assert second.status == "ready"
    counts = await one(model_services,
        "SELECT count(*) FILTER (WHERE embedding_version = %s),"
        " count(*) FILTER (WHERE embedding_version = 'encoder-v2')"
        " FROM knowledge_chunk WHERE source_id = %s", old, source_id,
    )  # fmt: skip
    assert counts == (first.chunks, second.chunks)  # both sets, side by side
    async with svc.db.connection() as conn, conn.transaction():
        switched = await reembed.switch_ready(conn, version="encoder-v2", context_id=context_id)
    assert switched == [context_id]
    assert await one(svc, "SELECT embedding_version FROM knowledge_context WHERE id = %s",
                     context_id) == ("encoder-v2",)  # fmt: skip
    assert await one(model_services,
        "SELECT count(*) FROM knowledge_chunk WHERE source_id = %s AND embedding_version <> %s",
        source_id, "encoder-v2",
    ) == (0,)  # fmt: skip
    page = (await api.get(f"/v1/contexts/{context_id}/chunks", headers=headers)).json()["data"]
    assert len(page["items"]) == second.chunks


async def test_a_stuck_source_is_queued_again(chat_api, model_services):  # noqa: F811
    svc = model_services
    api = chat_api
    _, headers = await user(api)
    context_id = await new_context(api, headers)
    sent = await upload(api, headers, "guide.md", context_id=context_id)
    file_id = sent.json()["data"]["file"]["id"]
    (source_id, attempts) = await one(
        model_services, "SELECT id::text, attempts FROM context_source WHERE file_id = %s", file_id
    )
    async with svc.db.connection() as conn:
        await conn.execute(
            "UPDATE context_source SET queued_at = now() - interval '2 hours' WHERE id = %s",
            (source_id,),
        )
    async with svc.db.connection() as conn, conn.transaction():
        redriven = await reembed.redrive_stuck(
            conn, version=svc.settings.rag_embedding_version, stuck_after_s=3600,
            limit=1000,
        )  # fmt: skip
    assert redriven >= 1
    after = await one(svc, "SELECT attempts, status, queued_at > now() - interval '1 minute'"
                      " FROM context_source WHERE id = %s", source_id)  # fmt: skip
    assert after == (attempts + 1, "pending", True)
    messages = await one(
        model_services,
        "SELECT count(*) FROM outbox_message WHERE body->>'source_id' = %s",
        source_id,
    )
    assert messages == (2,)  # the first queuing and the re-drive, each its own message
