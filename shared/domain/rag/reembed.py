"""Keeping ingestion moving.

- Sources stuck in pending/processing (a lost message, a crashed run) are queued again.
- After the queue server lost its messages (the local in-memory SQS restarted), the sources
  whose message went to the old queue are queued again at once (`redrive_lost`).
- After an encoder bump (RAG_EMBEDDING_VERSION changes), every source is re-ingested at the new
  version beside its old chunks; retrieval keeps reading each context's active version until
  >= 95 % of its files are ready at the new one, then switches and the old chunks go.
"""

from __future__ import annotations

from typing import Any

from shared.domain.rag.contexts import INGEST_QUEUE, queue_ingest
from shared.platform.db.pool import Pool

SWITCH_FRACTION = 0.95


async def redrive_stuck(conn: Any, *, version: str, stuck_after_s: int, limit: int) -> int:
    rows = await (
        await conn.execute(
            "SELECT id::text FROM context_source WHERE status IN ('pending', 'processing')"
            " AND queued_at < now() - make_interval(secs => %s) ORDER BY queued_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED",
            (stuck_after_s, limit),
        )
    ).fetchall()
    for (source_id,) in rows:
        await queue_ingest(conn, source_id, embedding_version=version)
    return len(rows)


async def redrive_lost(conn: Any, *, version: str, lost_before: Any, limit: int = 500) -> int:
    """Sources pending/processing since before the ingest queue was created again, unless an
    ingest message for them is still to be sent or was sent to the new queue. Queuing again is
    safe while an old delivery still runs: ingestion is idempotent on the source (its chunks are
    replaced under the source's row lock; unchanged bytes at the same version are a no-op)."""
    rows = await (
        await conn.execute(
            "SELECT s.id::text FROM context_source s"
            " WHERE s.status IN ('pending', 'processing') AND s.queued_at < %s"
            " AND NOT EXISTS (SELECT 1 FROM outbox_message o WHERE o.queue = %s"
            "  AND o.body->>'source_id' = s.id::text AND (o.sent_at IS NULL OR o.sent_at >= %s))"
            " ORDER BY s.queued_at LIMIT %s FOR UPDATE OF s SKIP LOCKED",
            (lost_before, INGEST_QUEUE, lost_before, limit),
        )
    ).fetchall()
    for (source_id,) in rows:
        await queue_ingest(conn, source_id, embedding_version=version)
    return len(rows)


async def queue_reembed(
    conn: Any, *, version: str, limit: int, context_id: str | None = None
) -> int:
    """Ready sources (of one context, or all) whose chunks are of another encoder version."""
    rows = await (
        await conn.execute(
            "SELECT id::text FROM context_source WHERE status = 'ready'"
            " AND embedding_version IS DISTINCT FROM %s"
            " AND (%s::uuid IS NULL OR context_id = %s::uuid) ORDER BY queued_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED",
            (version, context_id, context_id, limit),
        )
    ).fetchall()
    for (source_id,) in rows:
        await queue_ingest(conn, source_id, embedding_version=version)
    return len(rows)


async def switch_ready(conn: Any, *, version: str, context_id: str | None = None) -> list[str]:
    """Contexts not at `version` whose files are >= 95 % ready at it: switched, their old
    chunks deleted. Returns the switched context ids."""
    rows = await (
        await conn.execute(
            "SELECT k.id::text FROM knowledge_context k JOIN context_source s"
            " ON s.context_id = k.id WHERE k.embedding_version <> %s"
            " AND (%s::uuid IS NULL OR k.id = %s::uuid) GROUP BY k.id"
            " HAVING count(*) FILTER (WHERE s.status = 'ready' AND s.embedding_version = %s)"
            "  >= %s * count(*)",
            (version, context_id, context_id, version, SWITCH_FRACTION),
        )
    ).fetchall()
    switched = [r[0] for r in rows]
    for ident in switched:
        await conn.execute(
            "UPDATE knowledge_context SET embedding_version = %s, updated_at = now() WHERE id = %s",
            (version, ident),
        )
        await conn.execute(
            "DELETE FROM knowledge_chunk WHERE context_id = %s AND embedding_version <> %s",
            (ident, version),
        )
    return switched


async def sweep(
    pool: Pool, *, version: str, stuck_after_s: int, limit: int = 200
) -> dict[str, Any]:
    async with pool.connection() as conn, conn.transaction():
        stuck = await redrive_stuck(conn, version=version, stuck_after_s=stuck_after_s,
                                    limit=limit)  # fmt: skip
        reembed = await queue_reembed(conn, version=version, limit=limit)
        switched = await switch_ready(conn, version=version)
    return {"redriven": stuck, "reembed_queued": reembed, "switched": switched}
