"""What the files function does, one function per endpoint (DESIGN.md §4 flow 2, §5).

The bytes go to the object store first, the row and the ingest message (outbox) commit
together after; a failure in between removes the object, so nothing half-written stays. The
outbox is flushed right after the commit (best effort; the relay's sweep catches the rest).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from shared import outbox
from shared.deps import Dependencies
from shared.errors import NotFound, PayloadTooLarge, ValidationError
from shared.files import store
from shared.files.names import checked_kind, object_key, sanitize_name
from shared.files.upload import ObjectSink, receive_form
from shared.rag import contexts
from shared.rag.parsers import ALLOWED_EXTENSIONS

log = logging.getLogger(__name__)
FORM_OVERHEAD_BYTES = 64 << 10  # multipart boundaries and small fields beside the file
CONTENT_TYPES = {"text": "text/plain", "markdown": "text/markdown", "pdf": "application/pdf",
                 "html": "text/html"}  # fmt: skip


@dataclass(frozen=True)
class Stored:
    file: store.FileRow
    duplicate: bool = False
    context_id: str | None = None
    queued: bool = False


def over_cap(cap: int, tier: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"file is over the {cap} byte limit of the {tier} plan",
                           details={"max_bytes": cap, "plan_tier": tier})  # fmt: skip


async def max_bytes(conn: Any, deps: Dependencies, user_id: str) -> tuple[str, int]:
    row = await (
        await conn.execute("SELECT plan_tier FROM app_user WHERE id = %s", (user_id,))
    ).fetchone()
    tiers = deps.settings.files_max_bytes_by_tier
    tier = row[0] if row and row[0] in tiers else "free"
    return tier, tiers.get(tier, min(tiers.values()))


def limits_of(deps: Dependencies, tier: str, cap: int) -> dict[str, Any]:
    return {"plan_tier": tier, "max_bytes": cap, "allowed_extensions": sorted(ALLOWED_EXTENSIONS),
            "tiers": dict(deps.settings.files_max_bytes_by_tier)}  # fmt: skip


def _form_settings(fields: dict[str, str]) -> tuple[str | None, dict[str, Any]]:
    """The optional `context_id`, `chunk_size`, `chunk_overlap` fields of an upload."""
    context_id = fields.get("context_id") or None
    overrides: dict[str, Any] = {}
    for key in ("chunk_size", "chunk_overlap"):
        if fields.get(key):
            if not fields[key].strip().isdigit():
                raise ValidationError(f"{key} must be a whole number of tokens")
            overrides[key] = int(fields[key])
    if overrides:
        contexts.check_settings(overrides)
    return context_id, overrides


async def upload(deps: Dependencies, user_id: str, is_admin: bool, request: Request) -> Stored:
    pool = await deps.db.get()
    async with pool.connection() as conn:
        tier, cap = await max_bytes(conn, deps, user_id)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap + FORM_OVERHEAD_BYTES:
        raise over_cap(cap, tier)
    file_id = str(uuid.uuid4())
    made: dict[str, Any] = {}

    def open_sink(filename: str, content_type: str | None) -> ObjectSink:
        name = sanitize_name(filename)
        made.update(name=name, kind=checked_kind(name))
        return ObjectSink(deps.s3, deps.bucket(), object_key(user_id, file_id, name),
                          content_type=CONTENT_TYPES[made["kind"]], max_bytes=cap)  # fmt: skip

    form = await receive_form(request, open_sink)
    sink = form.sink
    assert sink is not None
    try:
        context_id, overrides = _form_settings(form.fields)
        result = await _record(
            deps, user_id, is_admin, file_id=file_id, name=made["name"], kind=made["kind"],
            sink=sink, context_id=context_id, overrides=overrides,
        )  # fmt: skip
    except BaseException:
        await asyncio.shield(sink.abort())
        raise
    if result.duplicate:
        await asyncio.shield(sink.abort())  # the same bytes are stored already
    if result.queued:
        await outbox.flush(await deps.db.get(), deps.sqs, deps.queues)
    return result


async def _record(
    deps: Dependencies, user_id: str, is_admin: bool, *, file_id: str, name: str, kind: str,
    sink: ObjectSink, context_id: str | None, overrides: dict[str, Any],
) -> Stored:  # fmt: skip
    pool = await deps.db.get()
    async with pool.connection() as conn, conn.transaction():
        context = None
        if context_id:
            context = await contexts.get_writable(conn, user_id, context_id, is_admin=is_admin)
        duplicate = await store.find_duplicate(conn, user_id, name, sink.checksum)
        row = duplicate or await store.insert(
            conn, file_id=file_id, owner=user_id, name=name, object_key=sink.key, kind=kind,
            content_type=sink.content_type, size_bytes=sink.size, checksum=sink.checksum,
            status="stored",
        )  # fmt: skip
        queued = False
        if context is not None:
            _, queued = await contexts.attach(conn, context, row.id, overrides=overrides)
            row = await store.get(conn, user_id, row.id)
    return Stored(row, duplicate=duplicate is not None, context_id=context_id, queued=queued)


async def presign(
    deps: Dependencies, public_s3: Any, user_id: str, *, filename: str, size_bytes: int
) -> tuple[store.FileRow, dict[str, Any]]:
    """A presigned POST (URL + form fields) the browser uploads to directly; the policy caps
    the size to the plan's limit and pins the key, so the store itself refuses anything
    else. The row waits in `uploading` until `complete`."""
    name = sanitize_name(filename)
    kind = checked_kind(name)
    pool = await deps.db.get()
    async with pool.connection() as conn, conn.transaction():
        tier, cap = await max_bytes(conn, deps, user_id)
        if size_bytes > cap:
            raise over_cap(cap, tier)
        file_id = str(uuid.uuid4())
        key = object_key(user_id, file_id, name)
        row = await store.insert(
            conn, file_id=file_id, owner=user_id, name=name, object_key=key, kind=kind,
            content_type=CONTENT_TYPES[kind], size_bytes=None, checksum=None, status="uploading",
        )  # fmt: skip
    post = await asyncio.to_thread(
        public_s3.generate_presigned_post, Bucket=deps.bucket(), Key=key,
        Fields={"Content-Type": CONTENT_TYPES[kind]},
        Conditions=[["content-length-range", 1, cap], {"Content-Type": CONTENT_TYPES[kind]}],
        ExpiresIn=deps.settings.files_presign_ttl_s,
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


async def complete(
    deps: Dependencies, user_id: str, is_admin: bool, file_id: str, *,
    context_id: str | None, overrides: dict[str, Any],
) -> Stored:  # fmt: skip
    """Confirms a presigned upload: the object must be there and within the cap; then the
    file is `stored` (and attached and queued when a context is named)."""
    pool = await deps.db.get()
    async with pool.connection() as conn:
        row = await store.get(conn, user_id, file_id)
        _, cap = await max_bytes(conn, deps, user_id)
    if row.status != "uploading":
        raise ValidationError(f"file {file_id} is already complete ({row.status})")
    try:
        size, checksum = await asyncio.to_thread(_digest, deps.s3, deps.bucket(), row.object_key,
                                                 cap)  # fmt: skip
    except deps.s3.exceptions.NoSuchKey:
        raise ValidationError("nothing was uploaded to the presigned URL yet") from None
    except PayloadTooLarge:
        await asyncio.to_thread(deps.s3.delete_object, Bucket=deps.bucket(), Key=row.object_key)
        raise
    async with pool.connection() as conn, conn.transaction():
        row = await store.get(conn, user_id, file_id, lock=True)
        context = None
        if context_id:
            context = await contexts.get_writable(conn, user_id, context_id, is_admin=is_admin)
        await store.set_status(conn, row.id, "stored", size_bytes=size, checksum=checksum)
        queued = False
        if context is not None:
            _, queued = await contexts.attach(conn, context, row.id, overrides=overrides)
        row = await store.get(conn, user_id, file_id)
    if queued:
        await outbox.flush(pool, deps.sqs, deps.queues)
    return Stored(row, context_id=context_id, queued=queued)


def download_url(deps: Dependencies, public_s3: Any, row: store.FileRow) -> str:
    """A GET URL valid for FILES_DOWNLOAD_TTL_S that makes the browser save, not render."""
    if row.status == "uploading":
        raise NotFound(f"file {row.id} has not been uploaded yet")
    disposition = f"attachment; filename*=UTF-8''{quote(row.name, safe='')}"
    url: str = public_s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": deps.bucket(), "Key": row.object_key,
                "ResponseContentDisposition": disposition,
                "ResponseContentType": "application/octet-stream"},
        ExpiresIn=deps.settings.files_download_ttl_s,
    )  # fmt: skip
    return url


async def delete(deps: Dependencies, user_id: str, file_id: str) -> None:
    """Row first (chunks leave search with it, by cascade), then the object."""
    pool = await deps.db.get()
    async with pool.connection() as conn, conn.transaction():
        row = await store.delete(conn, user_id, file_id)
    try:
        await asyncio.to_thread(deps.s3.delete_object, Bucket=deps.bucket(), Key=row.object_key)
    except Exception:
        log.exception("file %s: row deleted but the object could not be removed", row.id)
