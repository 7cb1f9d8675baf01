"""Knowledge contexts and their sources.

A user reads their own contexts and the global ones; only the owner (or an admin, for a global
context) changes one. Attaching a file writes a `context_source` row and, in the same
transaction, an ingest message in the outbox: the ingestion exists only if the attach commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from shared.domain.files import store as file_store
from shared.domain.rag.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE, check_window
from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.errors import Forbidden, NotFound, ValidationError
from shared.platform.outbox import enqueue

INGEST_QUEUE = "IngestQueue"
COLUMNS = (
    "id::text, owner_user_id::text, name, description, visibility, embedding_version, meta,"
    " created_at, updated_at"
)
# Context settings kept in meta, with their defaults (the chunker bounds the window).
SETTINGS_DEFAULTS: dict[str, Any] = {
    "chunk_size": DEFAULT_SIZE, "chunk_overlap": DEFAULT_OVERLAP, "pii_scrub": False,
}  # fmt: skip


@dataclass
class Context:
    id: str
    owner_user_id: str
    name: str
    description: str | None
    visibility: str
    embedding_version: str
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, Any]:
        return {key: self.meta.get(key, default) for key, default in SETTINGS_DEFAULTS.items()}


def context_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"no such knowledge context: {str(value)[:64]!r}") from None


async def create(
    conn: Any, owner: str, *, name: str, description: str | None, visibility: str,
    settings: dict[str, Any], embedding_version: str, is_admin: bool,
) -> Context:  # fmt: skip
    if visibility == "global" and not is_admin:
        raise Forbidden("only admins create global contexts")
    cursor = conn.cursor(row_factory=class_row(Context))
    await cursor.execute(
        "INSERT INTO knowledge_context (owner_user_id, name, description, visibility,"  # noqa: S608 - constant columns, values bound
        f" embedding_version, meta) VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
        (owner, name, description, visibility, embedding_version, Jsonb(settings)),
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def _find(conn: Any, user_id: str, context_id: str, *, lock: bool) -> Context:
    cursor = conn.cursor(row_factory=class_row(Context))
    await cursor.execute(
        f"SELECT {COLUMNS} FROM knowledge_context WHERE id = %s"  # noqa: S608 - constant columns
        " AND (owner_user_id = %s OR visibility = 'global')" + (" FOR UPDATE" if lock else ""),
        (context_uuid(context_id), user_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"no such knowledge context: {context_id}")
    return row


async def get_readable(conn: Any, user_id: str, context_id: str) -> Context:
    return await _find(conn, user_id, context_id, lock=False)


async def get_writable(conn: Any, user_id: str, context_id: str, *, is_admin: bool) -> Context:
    """Locked for the change; a global context someone else owns is read-only to non-admins."""
    row = await _find(conn, user_id, context_id, lock=True)
    if row.owner_user_id != user_id and not is_admin:
        raise Forbidden("this global context is read-only")
    return row


async def readable_versions(conn: Any, user_id: str, context_ids: list[str]) -> dict[str, str]:
    """{context id: active embedding version} for those of `context_ids` this user may search
    (retrieval's ACL)."""
    ids = [context_uuid(c) for c in context_ids]
    rows = await (
        await conn.execute(
            "SELECT id::text, embedding_version FROM knowledge_context WHERE id = ANY(%s::uuid[])"
            " AND (owner_user_id = %s OR visibility = 'global')",
            (ids, user_id),
        )
    ).fetchall()
    return {r[0]: r[1] for r in rows}


async def list_for(
    conn: Any, user_id: str, *, owner: str, cursor: str | None, limit: int
) -> tuple[list[Context], str | None]:
    scope = {
        "me": "owner_user_id = %s",
        "global": "visibility = 'global' AND %s::uuid IS NOT NULL",
        "all": "(owner_user_id = %s OR visibility = 'global')",
    }[owner]
    where, args = scope, [user_id]
    if cursor:
        created, last_id = decode_cursor(cursor, 2)
        where += " AND (created_at, id) < (%s::timestamptz, %s::uuid)"
        args += [created, last_id]
    rows = conn.cursor(row_factory=class_row(Context))
    await rows.execute(
        f"SELECT {COLUMNS} FROM knowledge_context WHERE {where}"  # noqa: S608 - constant columns, values bound
        " ORDER BY created_at DESC, id DESC LIMIT %s",
        (*args, probe_size(limit)),
    )
    items, next_cursor = keyset_page(
        await rows.fetchall(), limit, lambda c: encode_cursor(c.created_at, c.id)
    )
    every = await stats_of(conn, [item.id for item in items])
    for item in items:
        item.stats = every[item.id]
    return items, next_cursor


async def update(conn: Any, context: Context, changes: dict[str, Any]) -> Context:
    meta = {**context.meta, **{k: v for k, v in changes.items() if k in SETTINGS_DEFAULTS}}
    cursor = conn.cursor(row_factory=class_row(Context))
    await cursor.execute(
        "UPDATE knowledge_context SET name = %s, description = %s, meta = %s, updated_at = now()"  # noqa: S608 - constant columns, values bound
        f" WHERE id = %s RETURNING {COLUMNS}",
        (changes.get("name", context.name), changes.get("description", context.description),
         Jsonb(meta), context.id),
    )  # fmt: skip
    row = await cursor.fetchone()
    assert row is not None
    return row


async def delete(conn: Any, context: Context) -> None:
    await conn.execute("DELETE FROM knowledge_context WHERE id = %s", (context.id,))


async def queue_ingest(conn: Any, source_id: str, *, embedding_version: str) -> None:
    """Marks the source pending and writes its ingest message (a fresh dedup key per queuing,
    so a re-drive is a new message while a double commit of one queuing is not)."""
    row = await (
        await conn.execute(
            "UPDATE context_source SET status = 'pending', error = NULL, queued_at = now(),"
            " attempts = attempts + 1 WHERE id = %s RETURNING attempts",
            (source_id,),
        )
    ).fetchone()
    assert row is not None
    await enqueue(
        conn, queue=INGEST_QUEUE,
        body={"source_id": source_id, "embedding_version": embedding_version},
        dedup_key=f"ingest:{source_id}:{embedding_version}:{row[0]}",
    )  # fmt: skip


async def attach(
    conn: Any, context: Context, file_id: str, *, overrides: dict[str, Any]
) -> tuple[str, bool]:
    """(source id, queued): attaching a file already attached is a no-op, not a re-ingest."""
    row = await (
        await conn.execute(
            "INSERT INTO context_source (context_id, file_id, fs_path, recursive, meta)"
            " SELECT %s, f.id, f.name, FALSE, %s FROM user_file f WHERE f.id = %s"
            " ON CONFLICT (context_id, file_id) DO NOTHING RETURNING id::text",
            (context.id, Jsonb(overrides), file_id),
        )
    ).fetchone()
    if row is None:
        existing = await (
            await conn.execute(
                "SELECT id::text FROM context_source WHERE context_id = %s AND file_id = %s",
                (context.id, file_id),
            )
        ).fetchone()
        if existing is None:
            raise NotFound(f"no such file: {file_id}")
        return existing[0], False
    await queue_ingest(conn, row[0], embedding_version=context.embedding_version)
    await file_store.set_status(conn, file_id, "pending")  # the files package writes user_file
    return row[0], True


async def detach(conn: Any, context: Context, file_id: str) -> None:
    """Removes the source and, by cascade, its chunks from search."""
    result = await conn.execute(
        "DELETE FROM context_source WHERE context_id = %s AND file_id = %s",
        (context.id, file_id),
    )
    if result.rowcount == 0:
        raise NotFound(f"file {file_id} is not attached to this context")


async def chunks(
    conn: Any, context: Context, *, file_id: str | None, cursor: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """The context's live chunks (its active embedding version), newest file first."""
    where = "c.context_id = %s AND c.embedding_version = %s"
    args: list[Any] = [context.id, context.embedding_version]
    if file_id:
        where += " AND c.file_id = %s"
        args.append(file_id)
    if cursor is not None:
        where += " AND c.id > %s"
        args.append(cursor)
    rows = await (
        await conn.execute(
            "SELECT c.id, c.file_id::text, c.fs_path, c.chunk_index, c.content, c.heading,"  # noqa: S608 - constant columns, values bound
            " c.page, c.char_start, c.char_end, c.token_count FROM knowledge_chunk c"
            f" WHERE {where} ORDER BY c.id LIMIT %s",
            (*args, probe_size(limit)),
        )
    ).fetchall()
    keys = ("id", "file_id", "path", "chunk_index", "content", "heading", "page", "start",
            "end", "token_count")  # fmt: skip
    page, next_cursor = keyset_page(rows, limit, lambda row: row[0])
    items = [dict(zip(keys, row, strict=True)) for row in page]
    for item in items:
        item["id"] = str(item["id"])
    return items, next_cursor


def chunk_key(value: str) -> int:
    """A chunk id from input (a positive integer); anything else names no chunk (404)."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) == 0:
        raise NotFound(f"no such chunk: {text[:64]!r}")
    return int(text)


async def chunk_for(conn: Any, user_id: str, chunk_id: str) -> dict[str, Any]:
    """One chunk of a context the user may read (their own or a global one), with its file's
    name: what a citation points at. Another user's chunk is 404, as an unknown one."""
    row = await (
        await conn.execute(
            "SELECT c.id, c.context_id::text, c.file_id::text, coalesce(f.name, c.fs_path),"
            " c.content, c.heading, c.page, c.char_start, c.char_end FROM knowledge_chunk c"
            " JOIN knowledge_context k ON k.id = c.context_id"
            " LEFT JOIN user_file f ON f.id = c.file_id"
            " WHERE c.id = %s AND (k.owner_user_id = %s OR k.visibility = 'global')",
            (chunk_key(chunk_id), user_id),
        )
    ).fetchone()
    if row is None:
        raise NotFound(f"no such chunk: {chunk_id}")
    keys = ("id", "context_id", "file_id", "file_name", "content", "heading", "page", "start",
            "end")  # fmt: skip
    item = dict(zip(keys, row, strict=True))
    item["id"] = str(item["id"])
    return item


async def stats(conn: Any, context_id: str) -> dict[str, Any]:
    return (await stats_of(conn, [context_id]))[context_id]


async def stats_of(conn: Any, context_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per context (one query for a page of them): files by ingestion status, live chunks, and
    the ingestion lag, how long the oldest pending file has waited."""
    rows = await (
        await conn.execute(
            "SELECT k.id::text, count(s.id), count(*) FILTER (WHERE s.status = 'pending'),"
            " count(*) FILTER (WHERE s.status = 'processing'),"
            " count(*) FILTER (WHERE s.status = 'ready'),"
            " count(*) FILTER (WHERE s.status = 'failed'),"
            " coalesce(sum(s.chunk_count) FILTER (WHERE s.status = 'ready'), 0),"
            " extract(epoch FROM now() - min(s.queued_at)"
            "   FILTER (WHERE s.status IN ('pending', 'processing'))),"
            " max(s.ingested_at)"
            " FROM unnest(%s::uuid[]) AS k(id) LEFT JOIN context_source s ON s.context_id = k.id"
            " GROUP BY k.id",
            (context_ids,),
        )
    ).fetchall()
    found = {}
    for ident, files, pending, processing, ready, failed, chunk_count, lag, last in rows:
        found[ident] = {
            "files": files, "chunks": int(chunk_count), "last_ingested_at": last,
            "ingestion": {"pending": pending, "processing": processing, "ready": ready,
                          "failed": failed},
            "ingestion_lag_s": round(float(lag), 1) if lag is not None else 0.0,
        }  # fmt: skip
    return found


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Window bounds of the chunker (64-4000 tokens, overlap at most half)."""
    size = int(settings.get("chunk_size", SETTINGS_DEFAULTS["chunk_size"]))
    overlap = int(settings.get("chunk_overlap", SETTINGS_DEFAULTS["chunk_overlap"]))
    try:
        check_window(size, overlap)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    return settings
