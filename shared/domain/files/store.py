"""`user_file` rows: every query is scoped to the owner; another user's file is a 404."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row

from shared.platform.db.cursor import (
    decode_cursor,
    encode_cursor,
    keyset_page,
    newest_first,
    probe_size,
)
from shared.platform.db.pool import Connection
from shared.platform.errors import NotFound

COLUMNS = (
    "id::text, owner_user_id::text, name, object_key, kind, content_type, size_bytes, checksum,"
    " status, error, created_at, updated_at"
)


@dataclass
class FileRow:
    id: str
    owner_user_id: str
    name: str
    object_key: str
    kind: str
    content_type: str | None
    size_bytes: int | None
    checksum: str | None
    status: str
    error: str | None
    created_at: datetime
    updated_at: datetime


def file_uuid(value: str) -> str:
    """A file id from input; anything but a UUID names no file (404)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound(f"no such file: {value[:64]!r}") from None


async def insert(
    conn: Any, *, file_id: str, owner: str, name: str, object_key: str, kind: str,
    content_type: str | None, size_bytes: int | None, checksum: str | None, status: str,
) -> FileRow:  # fmt: skip
    cursor = conn.cursor(row_factory=class_row(FileRow))
    await cursor.execute(
        "INSERT INTO user_file (id, owner_user_id, name, object_key, kind, content_type,"  # noqa: S608 - constant columns, values bound
        " size_bytes, checksum, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {COLUMNS}",
        (file_id, owner, name, object_key, kind, content_type, size_bytes, checksum, status),
    )
    row = await cursor.fetchone()
    assert row is not None
    return row


async def get(conn: Any, owner: str, file_id: str, *, lock: bool = False) -> FileRow:
    cursor = conn.cursor(row_factory=class_row(FileRow))
    await cursor.execute(
        f"SELECT {COLUMNS} FROM user_file WHERE id = %s AND owner_user_id = %s"  # noqa: S608 - constant columns, values bound
        + (" FOR UPDATE" if lock else ""),
        (file_uuid(file_id), owner),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"no such file: {file_id}")
    return row


async def find_duplicate(conn: Any, owner: str, name: str, checksum: str) -> FileRow | None:
    """The same bytes under the same name, already stored (uploads are deduplicated)."""
    cursor = conn.cursor(row_factory=class_row(FileRow))
    await cursor.execute(
        f"SELECT {COLUMNS} FROM user_file WHERE owner_user_id = %s AND name = %s"  # noqa: S608 - constant columns, values bound
        " AND checksum = %s AND status <> 'uploading' ORDER BY created_at LIMIT 1",
        (owner, name, checksum),
    )
    return await cursor.fetchone()


async def list_for(
    conn: Connection, owner: str, *, cursor: str | None, limit: int
) -> tuple[list[FileRow], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    where, args = "owner_user_id = %s", [owner]
    if cursor:
        created, last_id = decode_cursor(cursor, 2)
        where += " AND (created_at, id) < (%s::timestamptz, %s::uuid)"
        args += [created, last_id]
    rows = conn.cursor(row_factory=class_row(FileRow))
    await rows.execute(
        f"SELECT {COLUMNS} FROM user_file WHERE {where}"  # noqa: S608 - constant columns, values bound
        " ORDER BY created_at DESC, id DESC LIMIT %s",
        (*args, probe_size(limit)),
    )
    found = await rows.fetchall()
    return keyset_page(found, limit, lambda f: encode_cursor(f.created_at, f.id))


async def set_status(
    conn: Any, file_id: str, status: str, *, error: str | None = None, **known: Any
) -> None:
    """`known` may set size_bytes and checksum once the bytes have been read."""
    sets = ["status = %s", "error = %s", "updated_at = now()"]
    args: list[Any] = [status, error]
    for column in ("size_bytes", "checksum"):
        if column in known:
            sets.append(f"{column} = %s")
            args.append(known[column])
    await conn.execute(f"UPDATE user_file SET {', '.join(sets)} WHERE id = %s", (*args, file_id))  # noqa: S608 - constant columns, values bound


async def contexts_of(conn: Any, file_id: str) -> list[dict[str, Any]]:
    """Where the file is attached, with each attachment's ingestion state."""
    rows = await (
        await conn.execute(
            "SELECT context_id::text, status, error, chunk_count, ingested_at"
            " FROM context_source WHERE file_id = %s ORDER BY created_at",
            (file_id,),
        )
    ).fetchall()
    keys = ("context_id", "status", "error", "chunks", "ingested_at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


@dataclass(frozen=True)
class Attached:
    """A file in a context, with that attachment's ingestion."""

    file: FileRow
    source_id: str
    status: str
    error: str | None
    chunks: int
    attached_at: datetime
    ingested_at: datetime | None


_FILE_COLUMNS = ", ".join(f"f.{column.strip()}" for column in COLUMNS.split(","))
_IN_CONTEXT = (
    f"SELECT {_FILE_COLUMNS}, s.id::text, s.status, s.error, s.chunk_count, s.created_at,"  # noqa: S608 - constant columns
    " s.ingested_at FROM context_source s JOIN user_file f ON f.id = s.file_id"
    " WHERE s.context_id = %(context)s"
)


def _attached(row: Any) -> Attached:
    width = len(COLUMNS.split(","))
    return Attached(FileRow(*row[:width]), *row[width:])


async def in_context(
    conn: Connection, context_id: str, *, owner: str | None, cursor: str | None, limit: int
) -> tuple[list[Attached], str | None]:
    """The files attached to a context, the newest attachment first, each with its ingestion
    there; only `owner`'s files when given (the caller has checked the context is readable)."""
    query, params = _IN_CONTEXT, {"context": context_id}
    if owner is not None:
        query, params = query + " AND f.owner_user_id = %(owner)s", {**params, "owner": owner}
    return await newest_first(
        conn, query, params, order=("s.created_at", "s.id"), cursor=cursor, limit=limit,
        row=_attached, key=lambda a: (a.attached_at, a.source_id),
    )  # fmt: skip


async def delete(conn: Any, owner: str, file_id: str) -> FileRow:
    """Deletes the row (its sources and chunks go by cascade); the caller removes the object
    after commit, so a failed delete never leaves a row pointing at nothing."""
    row = await get(conn, owner, file_id, lock=True)
    await conn.execute("DELETE FROM user_file WHERE id = %s", (row.id,))
    return row
