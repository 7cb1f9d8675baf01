"""Attaching files to a knowledge context, in one place for both ways it happens (an upload
naming a `context_id`, and `POST /v1/contexts/{id}/files` or a new context with `file_ids`).

`attaching` opens one transaction: whatever the caller writes in it (the file's row, say) and
each attachment with its ingest message in the outbox commit together or not at all. After
the commit the outbox is flushed, so ingestion starts at once (the relay's sweep is the
backstop when the flush cannot reach the queue).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from shared.domain.files import store as files
from shared.domain.rag import contexts
from shared.platform import outbox
from shared.platform.db.pool import Pool
from shared.platform.errors import NotFound
from shared.platform.queues import QueueDirectory


@dataclass
class Attacher:
    """The open transaction of `attaching`, and what it attached."""

    conn: Any
    attached: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(
        self, context: contexts.Context, user_id: str, file_ids: list[str],
        overrides: dict[str, Any],
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Attaches the caller's own files (404 for anyone else's, or for one still being
        uploaded); a file attached already is a no-op, not a re-ingest."""
        done = []
        for file_id in file_ids:
            row = await files.get(self.conn, user_id, file_id)
            if row.status == "uploading":
                raise NotFound(f"file {row.id} has not been uploaded yet")
            source_id, queued = await contexts.attach(
                self.conn, context, row.id, overrides=overrides
            )
            done.append({"file_id": row.id, "source_id": source_id, "queued": queued})
        self.attached += done
        return done

    @property
    def queued(self) -> bool:
        return any(a["queued"] for a in self.attached)


@asynccontextmanager
async def attaching(pool: Pool, *, sqs: Any, queues: QueueDirectory) -> AsyncIterator[Attacher]:
    async with pool.connection() as conn, conn.transaction():
        attacher = Attacher(conn)
        yield attacher
    if attacher.queued:
        await outbox.flush(pool, sqs, queues)
