"""Ingesting one file into one knowledge context (DESIGN.md §4 flow 2).

read the object → dedupe on (checksum, path) → parse → optional PII scrub → token-window
chunks → batched embeddings → replace the source's chunks in one transaction. Readers see the
old chunk set or the new one, never a half-written file. A file that can never be parsed is a
`PermanentFailure` (straight to the DLQ); anything else is retried by the queue, and on its
last receive the source and file are marked failed with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pgvector import Vector
from psycopg.types.json import Jsonb

from shared.domain.files import store as files
from shared.domain.llm.backend import LLMBackend
from shared.domain.rag import pii
from shared.domain.rag.chunking import Chunk, chunk_text, markdown_headings, minilm_offsets
from shared.domain.rag.contexts import SETTINGS_DEFAULTS
from shared.domain.rag.parsers import ParsedDocument, ParseError, page_of, parse
from shared.platform.db.pool import Pool
from shared.platform.runtime.batch import PermanentFailure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    id: str
    context_id: str
    file_id: str
    owner_user_id: str
    name: str
    object_key: str
    kind: str
    status: str
    checksum: str | None
    embedding_version: str | None
    settings: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    status: str  # "ready" | "unchanged" | "gone"
    chunks: int = 0


async def load_source(conn: Any, source_id: str) -> Source | None:
    row = await (
        await conn.execute(
            "SELECT s.id::text, s.context_id::text, f.id::text, f.owner_user_id::text, f.name,"
            " f.object_key, f.kind, s.status, s.checksum, s.embedding_version,"
            " k.meta || s.meta"
            " FROM context_source s JOIN user_file f ON f.id = s.file_id"
            " JOIN knowledge_context k ON k.id = s.context_id WHERE s.id = %s",
            (source_id,),
        )
    ).fetchone()
    if row is None:
        return None
    ident, context, file, owner, name, key, kind, status, checksum, version, settings = row
    return Source(
        ident,
        context,
        file,
        owner,
        name,
        key,
        kind,
        status,
        checksum,
        version,
        settings={**SETTINGS_DEFAULTS, **settings},
    )  # context's, then the overrides


def read_object(s3: Any, bucket: str, key: str, max_bytes: int) -> bytes:
    answer = s3.get_object(Bucket=bucket, Key=key)
    if answer["ContentLength"] > max_bytes:
        answer["Body"].close()
        raise PermanentFailure(f"file is over the {max_bytes} byte limit")
    data: bytes = answer["Body"].read()
    return data


def scrubbed(doc: ParsedDocument) -> ParsedDocument:
    """PII replaced page by page, so a PDF's page starts still point at their pages."""
    bounds = [*doc.page_starts, len(doc.text)] if doc.page_starts else [0, len(doc.text)]
    pages: list[str] = []
    starts: list[int] = []
    found = 0
    for start, end in itertools.pairwise(bounds):
        text, counts = pii.scrub(doc.text[start:end])
        starts.append(sum(len(p) for p in pages))
        pages.append(text)
        found += sum(counts.values())
    if found:
        log.info("pii scrubbed", extra={"replaced": found})
    page_starts = tuple(starts) if doc.page_starts else ()
    return ParsedDocument("".join(pages), doc.kind, doc.title, page_starts)


def cut(doc: ParsedDocument, settings: dict[str, Any]) -> tuple[ParsedDocument, list[Chunk]]:
    """The document to index (scrubbed when the context asks) and its chunks."""
    if settings.get("pii_scrub"):
        doc = scrubbed(doc)
    headings = markdown_headings(doc.text) if doc.kind in ("markdown", "html") else []
    chunks = chunk_text(
        doc.text, minilm_offsets(), size=int(settings["chunk_size"]),
        overlap=int(settings["chunk_overlap"]), headings=headings,
    )  # fmt: skip
    return doc, chunks


def embedding_text(chunk: Chunk) -> str:
    """The heading path tells the encoder what a passage is about when its text doesn't."""
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


async def embed_all(backend: LLMBackend, texts: Sequence[str], batch: int) -> list[list[float]]:
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch):
        vectors += await backend.embed(texts[start : start + batch])
    return vectors


async def replace_chunks(
    conn: Any, source: Source, doc: ParsedDocument, chunks: Sequence[Chunk],
    vectors: Sequence[Sequence[float]], *, version: str, checksum: str, size: int,
) -> None:  # fmt: skip
    """One transaction (the caller's): the old chunk set goes, the new one comes, the source
    and the file say ready."""
    await conn.execute(
        "DELETE FROM knowledge_chunk WHERE source_id = %s AND embedding_version = %s",
        (source.id, version),
    )
    rows = [
        (source.context_id, source.id, source.file_id, source.name, c.index, c.text,
         Vector(list(v)), version, c.start, c.end, c.token_count, c.heading,
         page_of(doc, c.start), Jsonb({"kind": doc.kind}))
        for c, v in zip(chunks, vectors, strict=True)
    ]  # fmt: skip
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO knowledge_chunk (context_id, source_id, file_id, fs_path, chunk_index,"
            " content, embedding, embedding_version, char_start, char_end, token_count,"
            " heading, page, meta) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    await conn.execute(
        "UPDATE context_source SET status = 'ready', error = NULL, checksum = %s,"
        " embedding_version = %s, chunk_count = %s, ingested_at = now() WHERE id = %s",
        (checksum, version, len(rows), source.id),
    )
    await files.set_status(conn, source.file_id, "ready", size_bytes=size, checksum=checksum)


async def ingest_source(
    pool: Pool, s3: Any, bucket: str, backend: LLMBackend, source_id: str, *,
    version: str, max_bytes: int, batch: int,
) -> Outcome:  # fmt: skip
    async with pool.connection() as conn:
        source = await load_source(conn, source_id)
        if source is None:
            return Outcome("gone")  # detached or deleted since it was queued
        await conn.execute(
            "UPDATE context_source SET status = 'processing' WHERE id = %s", (source.id,)
        )
        await files.set_status(conn, source.file_id, "processing")
    data = await asyncio.to_thread(read_object, s3, bucket, source.object_key, max_bytes)
    checksum = hashlib.sha256(data).hexdigest()
    if (source.status == "ready" and source.checksum == checksum
            and source.embedding_version == version):  # fmt: skip
        async with pool.connection() as conn:
            await conn.execute("UPDATE context_source SET status = 'ready' WHERE id = %s",
                               (source.id,))  # fmt: skip
            await files.set_status(conn, source.file_id, "ready")
        return Outcome("unchanged")
    try:
        doc = await asyncio.to_thread(parse, data, source.kind)
    except ParseError as exc:
        raise PermanentFailure(f"{source.name}: {exc}") from exc
    doc, chunks = await asyncio.to_thread(cut, doc, source.settings)
    if not chunks:
        raise PermanentFailure(f"{source.name}: no text to index")
    vectors = await embed_all(backend, [embedding_text(c) for c in chunks], batch)
    async with pool.connection() as conn, conn.transaction():
        held = await conn.execute(
            "SELECT 1 FROM context_source WHERE id = %s FOR UPDATE", (source.id,)
        )
        if await held.fetchone() is None:
            return Outcome("gone")  # deleted while we embedded: write nothing
        await replace_chunks(conn, source, doc, chunks, vectors, version=version,
                             checksum=checksum, size=len(data))  # fmt: skip
    return Outcome("ready", len(chunks))


async def mark_failed(pool: Pool, source_id: str, reason: str) -> None:
    """The source and its file show the reason; the chunks of an earlier good ingestion stay
    (a failed re-ingest does not empty a context)."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "UPDATE context_source SET status = 'failed', error = %s WHERE id = %s"
                " RETURNING file_id::text",
                (reason[:1000], source_id),
            )
        ).fetchone()
        if row is not None:
            await files.set_status(conn, row[0], "failed", error=reason[:1000])
