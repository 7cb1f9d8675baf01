"""Ingest queue function (DESIGN.md §4 flow 2): one message per (file, context) sent through
the outbox after the attach commits. Parse → chunk → embed → replace chunks atomically. A
file that cannot be parsed goes to the DLQ on its first receive; other failures are retried
and dead-lettered on the last receive; either way the file shows `failed` with the reason."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field

from shared.domain.rag import ingest, reembed
from shared.platform.runtime.batch import (
    SqsRecord,
    is_permanent,
    last_receive,
    queue_function,
)
from shared.services import Services

log = logging.getLogger(__name__)
UUID_PATTERN = r"^[0-9a-fA-F-]{36}$"


class IngestRequest(BaseModel):
    source_id: str = Field(pattern=UUID_PATTERN)
    embedding_version: str | None = None  # informational: chunks get the current encoder's


def failure_reason(exc: BaseException, record: SqsRecord) -> str:
    if is_permanent(exc):
        return str(exc)
    return f"ingestion failed after {record.receive_count} attempts ({type(exc).__name__})"


async def handle(record: SqsRecord, *, services: Services) -> None:
    request = IngestRequest.model_validate(record.payload())
    settings, pool = services.settings, services.db
    version = settings.rag_embedding_version
    try:
        outcome = await ingest.ingest_source(
            pool, services.s3, services.bucket(), services.llm, request.source_id, version=version,
            max_bytes=max(settings.files_max_bytes_by_tier.values()),
            batch=settings.rag_embed_batch,
        )  # fmt: skip
    except Exception as exc:
        if is_permanent(exc) or last_receive(services, record):
            await ingest.mark_failed(pool, request.source_id, failure_reason(exc, record))
        raise
    log.info("ingested", extra={"source_id": request.source_id, "status": outcome.status,
                                "chunks": outcome.chunks})  # fmt: skip
    if outcome.status == "ready":
        async with pool.connection() as conn, conn.transaction():
            await reembed.switch_ready(conn, version=version)


ROUTES = queue_function("ingest", handle, "SQS batch of files to ingest")
