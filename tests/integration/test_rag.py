"""Upload → ingest → retrieval → cited chat answer, end to end: the in-process gateway takes
the uploads, the outbox relay and the real dispatcher run the ingest function in its own
process, which parses, chunks and embeds through the session's inference service (MiniLM)
into pgvector; search and chat read it back through the gateway."""

from __future__ import annotations

import pytest

from shared.domain.rag import contexts
from shared.platform.db.pool import create_pool
from shared.services import Services
from tests.integration.chatkit import chat_api, user  # noqa: F401 - fixture
from tests.integration.ragkit import (
    dead_letters,
    ingest_workers,  # noqa: F401 - fixture
    new_context,
    upload,
    wait_ingested,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ingest_workers")]


async def search(api, headers, context_id: str, query: str, **extra) -> list[dict]:
    answer = await api.post(f"/v1/contexts/{context_id}/search", headers=headers,
                            json={"query": query, **extra})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"]["hits"])


async def test_files_are_ingested_searched_and_cited(chat_api, settings, model_services):  # noqa: F811
    api = chat_api
    _, headers = await user(api)
    context_id = await new_context(api, headers, name="library")
    ids = {}
    for name in ("guide.md", "article.html", "manual.pdf", "corrupt.pdf"):
        sent = await upload(api, headers, name, context_id=context_id)
        assert sent.status_code == 201, sent.text
        assert sent.json()["data"]["ingestion_queued"] is True
        ids[name] = sent.json()["data"]["file"]["id"]
    stats = await wait_ingested(api, headers, context_id)
    assert stats["ingestion"] == {"pending": 0, "processing": 0, "ready": 3, "failed": 1}
    assert stats["chunks"] >= 3

    # The corrupt PDF: failed with the reason, and its message is in the DLQ with it.
    broken = (await api.get(f"/v1/files/{ids['corrupt.pdf']}", headers=headers)).json()["data"]
    assert broken["status"] == "failed" and "PDF" in broken["error"], broken
    source_id = await source_of(model_services, context_id, ids["corrupt.pdf"])
    letters = dead_letters(settings, source_id)
    assert letters, "the corrupt PDF's message is not in the ingest DLQ"
    reason = letters[0]["MessageAttributes"]["failure_reason"]["StringValue"]
    assert "corrupt.pdf" in reason and "PDF" in reason

    # Each question finds its own file first, in every mode that can.
    for question, name in (
        ("How often should I feed my sourdough starter?", "guide.md"),
        ("How tall was the lighthouse of Alexandria?", "article.html"),
        ("When should a worn bicycle chain be replaced?", "manual.pdf"),
    ):
        for mode in ("hybrid", "dense", "text"):
            hits = await search(api, headers, context_id, question, mode=mode)
            assert hits and hits[0]["file_id"] == ids[name], (question, mode, hits[:2])
    pdf_hit = (await search(api, headers, context_id, "chain stretch measurement"))[0]
    assert pdf_hit["page"] in (1, 2)
    md_hit = (await search(api, headers, context_id, "Feeding Schedule ratio"))[0]
    assert md_hit["heading"].startswith("Caring for a Sourdough Starter")  # its heading path

    # A cited answer: the citation names the chunk the answer was grounded on.
    chat = await api.post("/v1/chat", headers=headers, json={
        "message": {"content": "How tall was the Pharos lighthouse?"},
        "context_ids": [context_id], "stream": False})  # fmt: skip
    assert chat.status_code == 200, chat.text
    done = chat.json()["data"]
    citations = [s for s in done["content_struct"]["segments"] if s["type"] == "citation"]
    assert citations and citations[0]["source_id"] == ids["article.html"]
    assert citations[0]["path"] == "article.html" and citations[0]["chunk_id"]
    assert done["content"].strip()

    # No relevant chunk: the answer says so and cites nothing.
    off_topic = await api.post("/v1/chat", headers=headers, json={
        "message": {"content": "Which team won the 1966 football world cup?"},
        "context_ids": [context_id], "stream": False})  # fmt: skip
    assert off_topic.status_code == 200, off_topic.text
    answer = off_topic.json()["data"]
    assert "couldn't find" in answer["content"]
    assert [s for s in answer["content_struct"]["segments"] if s["type"] == "citation"] == []

    # Deleting a file takes its chunks out of search.
    assert (
        await api.delete(f"/v1/files/{ids['article.html']}", headers=headers)
    ).status_code == 200
    hits = await search(api, headers, context_id, "How tall was the lighthouse of Alexandria?")
    assert ids["article.html"] not in {h["file_id"] for h in hits}
    chunks = (await api.get(f"/v1/contexts/{context_id}/chunks?limit=100", headers=headers)).json()
    assert ids["article.html"] not in {c["file_id"] for c in chunks["data"]["items"]}


async def source_of(services: Services, context_id: str, file_id: str) -> str:
    async with services.db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT id::text FROM context_source WHERE context_id = %s AND file_id = %s",
                (context_id, file_id),
            )
        ).fetchone()
    return str(row[0])


async def test_one_user_never_retrieves_anothers_chunks(chat_api):  # noqa: F811
    api = chat_api
    _, alice = await user(api)
    _, bob = await user(api)
    alices = await new_context(api, alice)
    await upload(api, alice, "guide.md", context_id=alices)
    bobs = await new_context(api, bob)
    await upload(api, bob, "notes.md", b"# Garden\nWater the tomatoes every morning.",
                 context_id=bobs)  # fmt: skip
    await wait_ingested(api, alice, alices)
    await wait_ingested(api, bob, bobs)

    assert (await api.post(f"/v1/contexts/{alices}/search", headers=bob,
                           json={"query": "sourdough"})).status_code == 404  # fmt: skip
    hits = await search(api, bob, bobs, "sourdough starter feeding ratio", k=20)
    assert {h["context_id"] for h in hits} == {bobs}
    stolen = await api.post("/v1/chat", headers=bob, json={
        "message": {"content": "How do I feed the starter?"}, "context_ids": [alices],
        "stream": False})  # fmt: skip
    assert stolen.status_code == 404


async def test_detach_and_context_settings(chat_api):  # noqa: F811
    api = chat_api
    _, headers = await user(api)
    context_id = await new_context(api, headers, chunk_size=64, chunk_overlap=8, pii_scrub=True)
    text = ("# Contacts\n\nWrite to jane.doe@example.com or call +44 20 7946 0958 about the "
            "orchard. " + "The orchard has forty apple trees of six varieties. " * 30)  # fmt: skip
    file_id = (await upload(api, headers, "contacts.md", text.encode(),
                            context_id=context_id)).json()["data"]["file"]["id"]  # fmt: skip
    await wait_ingested(api, headers, context_id)
    listed = (await api.get(f"/v1/contexts/{context_id}/files", headers=headers)).json()["data"]
    [held] = listed["items"]
    assert held["file"]["id"] == file_id and held["file"]["name"] == "contacts.md"
    assert held["status"] == "ready" and held["chunks"] > 3 and held["ingested_at"]
    _, other = await user(api)
    refused = await api.get(f"/v1/contexts/{context_id}/files", headers=other)
    assert refused.status_code == 404
    page = (await api.get(f"/v1/contexts/{context_id}/chunks", headers=headers)).json()["data"]
    contents = " ".join(c["content"] for c in page["items"])
    assert "[EMAIL]" in contents and "jane.doe" not in contents and "[PHONE]" in contents
    assert len(page["items"]) > 3 and all(c["token_count"] <= 64 for c in page["items"])
    bad = await api.patch(f"/v1/contexts/{context_id}", headers=headers,
                          json={"chunk_size": 100, "chunk_overlap": 80})  # fmt: skip
    assert bad.status_code == 400
    gone = await api.delete(f"/v1/contexts/{context_id}/files/{file_id}", headers=headers)
    assert gone.status_code == 200
    stats = (await api.get(f"/v1/contexts/{context_id}/stats", headers=headers)).json()["data"]
    assert (stats["files"], stats["chunks"]) == (0, 0)
    assert await search(api, headers, context_id, "apple trees") == []
    after = await api.get(f"/v1/contexts/{context_id}/files", headers=headers)
    assert after.json()["data"]["items"] == []


async def test_a_global_contexts_files_are_listed_to_their_owner_only(chat_api, settings):  # noqa: F811
    api = chat_api
    owner_id, owner = await user(api)
    _, reader = await user(api)
    pool = create_pool(settings)
    await pool.open()
    try:
        async with pool.connection() as conn:  # as an admin would make it
            shared = await contexts.create(
                conn, owner_id, name="handbook", description=None, visibility="global",
                settings={}, embedding_version=settings.rag_embedding_version, is_admin=True,
            )  # fmt: skip
        await upload(api, owner, "guide.md", context_id=shared.id)
        await wait_ingested(api, owner, shared.id)
        mine = await api.get(f"/v1/contexts/{shared.id}/files", headers=owner)
        assert [i["file"]["name"] for i in mine.json()["data"]["items"]] == ["guide.md"]
        theirs = await api.get(f"/v1/contexts/{shared.id}/files", headers=reader)
        assert theirs.status_code == 200 and theirs.json()["data"]["items"] == []
    finally:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM knowledge_context WHERE id = %s", (shared.id,))
        await pool.close()
