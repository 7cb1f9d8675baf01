"""Uploads and downloads of the user's files (DESIGN.md §4 flow 2, §5).

Transport-neutral: an upload is a file name and an async stream of its bytes (the files
function parses them out of its multipart body). The bytes go to the object store first
(`receive`), the row after (`record`, in the caller's transaction, where the files function
also attaches the file to a context); `keeping` removes the object when anything in between
fails, so nothing half-written stays. This package knows nothing of contexts or ingestion:
the files function composes it with `shared.domain.rag.attach`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared.domain.files import store
from shared.domain.files.kinds import ALLOWED_EXTENSIONS, CONTENT_TYPES
from shared.domain.files.names import checked_kind, object_key, sanitize_name
from shared.domain.files.upload import ObjectSink
from shared.platform.clients import Clients
from shared.platform.errors import NotFound, PayloadTooLarge, ValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    file: store.FileRow
    duplicate: bool = False


@dataclass
class Received:
    """An upload whose bytes are in the object store (not yet recorded): its sink and the
    names it will be stored under."""

    file_id: str
    name: str
    kind: str
    sink: ObjectSink


def over_cap(cap: int, tier: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"file is over the {cap} byte limit of the {tier} plan",
                           details={"max_bytes": cap, "plan_tier": tier})  # fmt: skip


async def max_bytes(conn: Any, clients: Clients, user_id: str) -> tuple[str, int]:
    row = await (
        await conn.execute("SELECT plan_tier FROM app_user WHERE id = %s", (user_id,))
    ).fetchone()
    tiers = clients.settings.files_max_bytes_by_tier
    tier = row[0] if row and row[0] in tiers else "free"
    return tier, tiers.get(tier, min(tiers.values()))


def limits_of(clients: Clients, tier: str, cap: int) -> dict[str, Any]:
    return {"plan_tier": tier, "max_bytes": cap, "allowed_extensions": sorted(ALLOWED_EXTENSIONS),
            "tiers": dict(clients.settings.files_max_bytes_by_tier)}  # fmt: skip


async def plan_cap(clients: Clients, user_id: str) -> tuple[str, int]:
    """(plan tier, byte cap) of the user's uploads, for a caller about to stream one."""
    pool = clients.db
    async with pool.connection() as conn:
        return await max_bytes(conn, clients, user_id)


async def receive(
    clients: Clients, user_id: str, *, filename: str, chunks: AsyncIterable[bytes],
    cap: int,
) -> Received:  # fmt: skip
    """Streams one file into the object store under a new key, within `cap` bytes (from
    `plan_cap`). The name, as the client sent it, is sanitized and its extension checked
    before a byte is read. No declared content type is taken: the object is stored with its
    kind's type, whatever the client claimed. Nothing stays in the store when the stream
    raises (a transport that finds its body cut short raises from `chunks`) or runs over the
    cap."""
    name = sanitize_name(filename)
    kind = checked_kind(name)
    file_id = str(uuid.uuid4())
    sink = ObjectSink(clients.s3, clients.bucket(), object_key(user_id, file_id, name),
                      content_type=CONTENT_TYPES[kind], max_bytes=cap)  # fmt: skip
    await sink.write(chunks)
    return Received(file_id, name, kind, sink)


@asynccontextmanager
async def keeping(received: Received) -> AsyncIterator[list[Stored]]:
    """Removes the uploaded object unless the block records it (appends its `Stored`): on any
    failure, and when the same bytes turn out to be stored already."""
    kept: list[Stored] = []
    try:
        yield kept
    except BaseException:
        await asyncio.shield(received.sink.abort())
        raise
    if not kept or kept[0].duplicate:
        await asyncio.shield(received.sink.abort())


async def record(conn: Any, user_id: str, received: Received) -> Stored:
    """The row of a received upload (in the caller's transaction), or the row of the same
    bytes under the same name stored before."""
    sink = received.sink
    duplicate = await store.find_duplicate(conn, user_id, received.name, sink.checksum)
    row = duplicate or await store.insert(
        conn, file_id=received.file_id, owner=user_id, name=received.name, object_key=sink.key,
        kind=received.kind, content_type=sink.content_type, size_bytes=sink.size,
        checksum=sink.checksum, status="stored",
    )  # fmt: skip
    return Stored(row, duplicate=duplicate is not None)


async def presign(
    clients: Clients, public_s3: Any, user_id: str, *, filename: str, size_bytes: int
) -> tuple[store.FileRow, dict[str, Any]]:
    """A presigned POST (URL + form fields) the browser uploads to directly; the policy caps
    the size to the plan's limit and pins the key, so the store itself refuses anything
    else. The row waits in `uploading` until `complete`."""
    name = sanitize_name(filename)
    kind = checked_kind(name)
    pool = clients.db
    async with pool.connection() as conn, conn.transaction():
        tier, cap = await max_bytes(conn, clients, user_id)
        if size_bytes > cap:
            raise over_cap(cap, tier)
        file_id = str(uuid.uuid4())
        key = object_key(user_id, file_id, name)
        row = await store.insert(
            conn, file_id=file_id, owner=user_id, name=name, object_key=key, kind=kind,
            content_type=CONTENT_TYPES[kind], size_bytes=None, checksum=None, status="uploading",
        )  # fmt: skip
    post = await asyncio.to_thread(
        public_s3.generate_presigned_post, Bucket=clients.bucket(), Key=key,
        Fields={"Content-Type": CONTENT_TYPES[kind]},
        Conditions=[["content-length-range", 1, cap], {"Content-Type": CONTENT_TYPES[kind]}],
        ExpiresIn=clients.settings.files_presign_ttl_s,
    )  # fmt: skip
    return row, post


def _digest(s3: Any, bucket: str, key: str, cap: int) -> tuple[int, str]:
    answer = s3.get_object(Bucket=bucket, Key=key)
    size = int(answer["ContentLength"])
    if size > cap:
        answer["Body"].close()
        raise PayloadTooLarge(f"the uploaded object is over the {cap} byte limit")
    sha = hashlib.sha256()
    for block in answer["Body"].iter_chunks(1 << 20):
        sha.update(block)
    return size, sha.hexdigest()


async def verify_upload(clients: Clients, user_id: str, file_id: str) -> tuple[int, str]:
    """(size, checksum) of what the browser uploaded to a presigned URL: it must be there and
    within the plan's cap (an oversized object is removed)."""
    pool = clients.db
    async with pool.connection() as conn:
        row = await store.get(conn, user_id, file_id)
        _, cap = await max_bytes(conn, clients, user_id)
    if row.status != "uploading":
        raise ValidationError(f"file {file_id} is already complete ({row.status})")
    try:
        return await asyncio.to_thread(_digest, clients.s3, clients.bucket(), row.object_key, cap)
    except clients.s3.exceptions.NoSuchKey:
        raise ValidationError("nothing was uploaded to the presigned URL yet") from None
    except PayloadTooLarge:
        await asyncio.to_thread(
            clients.s3.delete_object, Bucket=clients.bucket(), Key=row.object_key
        )
        raise


async def mark_stored(
    conn: Any, user_id: str, file_id: str, *, size: int, checksum: str
) -> store.FileRow:
    """A verified presigned upload is `stored` (in the caller's transaction)."""
    row = await store.get(conn, user_id, file_id, lock=True)
    if row.status != "uploading":
        raise ValidationError(f"file {file_id} is already complete ({row.status})")
    await store.set_status(conn, row.id, "stored", size_bytes=size, checksum=checksum)
    return row


# What the browser is told a file is when shown inline: never HTML (an uploaded page is shown
# as its source, so nothing in it runs), never a type the upload declared.
INLINE_TYPES = {"pdf": "application/pdf"}
INLINE_TEXT = "text/plain; charset=utf-8"


def download_url(clients: Clients, public_s3: Any, row: store.FileRow, *,
                 inline: bool = False) -> str:  # fmt: skip
    """A GET URL valid for FILES_DOWNLOAD_TTL_S that makes the browser save, not render; with
    `inline`, one the browser shows (text kinds as plain text, a PDF as a PDF)."""
    if row.status == "uploading":
        raise NotFound(f"file {row.id} has not been uploaded yet")
    how = "inline" if inline else "attachment"
    disposition = f"{how}; filename*=UTF-8''{quote(row.name, safe='')}"
    kind = INLINE_TYPES.get(row.kind, INLINE_TEXT) if inline else "application/octet-stream"
    url: str = public_s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": clients.bucket(), "Key": row.object_key,
                "ResponseContentDisposition": disposition, "ResponseContentType": kind},
        ExpiresIn=clients.settings.files_download_ttl_s,
    )  # fmt: skip
    return url


async def delete(clients: Clients, user_id: str, file_id: str) -> None:
    """Row first (chunks leave search with it, by cascade), then the object."""
    pool = clients.db
    async with pool.connection() as conn, conn.transaction():
        row = await store.delete(conn, user_id, file_id)
    try:
        await asyncio.to_thread(
            clients.s3.delete_object, Bucket=clients.bucket(), Key=row.object_key
        )
    except Exception:
        log.exception("file %s: row deleted but the object could not be removed", row.id)
