"""Scratch in the object store: what an interrupted write leaves behind.

- A presigned upload never completed: its `user_file` row waits in `uploading` forever (the
  browser went away); the row and whatever was uploaded go.
- A multipart upload never completed or aborted (a process killed while streaming a file,
  `shared.domain.files.upload`): its parts are stored and billed but belong to no object.
- An object under `users/{uid}/voice/` or `users/{uid}/files/` that no row names: the row is
  written after the object (a voice clip, a file), so a process killed between the two, or
  an object whose removal failed after its row went (the voice sweep, a file's deletion),
  leaves one.

Everything must be older than SCRATCH_TTL_S, so work in flight (an upload under way, a row
about to be committed) is never touched. Deleting again what is already gone is no error:
each run is idempotent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

# Keys whose owner row is known: the prefix's kind -> (table, column).
OWNED_PREFIXES = {"voice": ("voice_clips", "object_key"), "files": ("user_file", "object_key")}
_OWNED_KEY = re.compile(r"^users/[0-9a-f-]{36}/(voice|files)/")

_ABANDONED_UPLOADS = (
    "DELETE FROM user_file WHERE id IN ("
    " SELECT id FROM user_file WHERE status = 'uploading'"
    "  AND created_at < now() - make_interval(secs => %s)"
    " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING object_key"
)
_KNOWN_KEYS = (
    "SELECT object_key FROM voice_clips WHERE object_key = ANY(%(keys)s)"
    " UNION ALL SELECT object_key FROM user_file WHERE object_key = ANY(%(keys)s)"
)


def _cutoff(older_than_s: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_s)


async def delete_keys(s3: Any, bucket: str, keys: list[str]) -> int:
    """DeleteObjects in requests of 1000 keys (its limit); returns how many the store
    accepted. A key that cannot be deleted now is retried by the next run."""
    deleted = 0
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        answer = await asyncio.to_thread(
            s3.delete_objects, Bucket=bucket,
            Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
        )  # fmt: skip
        deleted += len(chunk) - len(answer.get("Errors", []))
    return deleted


async def abandoned_uploads(
    pool: Any, s3: Any, bucket: str, *, older_than_s: float, batch: int, max_batches: int
) -> int:
    """Files still `uploading` past the TTL: rows first (so nobody completes them any more),
    then their objects, if any were uploaded."""
    removed = 0
    for _ in range(max_batches):
        async with pool.connection() as conn, conn.transaction():
            rows = await (await conn.execute(_ABANDONED_UPLOADS, (older_than_s, batch))).fetchall()
        if rows:
            await delete_keys(s3, bucket, [row[0] for row in rows])
        removed += len(rows)
        if len(rows) < batch:
            break
    return removed


def _pages(s3: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    return iter(s3.get_paginator(operation).paginate(**kwargs))


async def _next_page(pages: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
    return await asyncio.to_thread(next, pages, None)


async def stale_multipart_uploads(
    s3: Any, bucket: str, *, older_than_s: float, max_batches: int
) -> int:
    cutoff = _cutoff(older_than_s)
    pages = await asyncio.to_thread(_pages, s3, "list_multipart_uploads", Bucket=bucket)
    aborted = 0
    for _ in range(max_batches):
        page = await _next_page(pages)
        if page is None:
            break
        for upload in page.get("Uploads", []):
            if upload["Initiated"] < cutoff:
                await asyncio.to_thread(
                    s3.abort_multipart_upload,
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"],
                )  # fmt: skip
                aborted += 1
    return aborted


async def stray_objects(
    pool: Any, s3: Any, bucket: str, *, older_than_s: float, max_batches: int
) -> int:
    """Objects under users/{uid}/voice|files/ that no row names, page by page (1000 keys a
    page: one query and one DeleteObjects each)."""
    cutoff = _cutoff(older_than_s)
    pages = await asyncio.to_thread(_pages, s3, "list_objects_v2", Bucket=bucket, Prefix="users/")
    deleted = 0
    for _ in range(max_batches):
        page = await _next_page(pages)
        if page is None:
            break
        old = [
            item["Key"]
            for item in page.get("Contents", [])
            if _OWNED_KEY.match(item["Key"]) and item["LastModified"] < cutoff
        ]
        if not old:
            continue
        async with pool.connection() as conn:
            known = {
                row[0] for row in await (await conn.execute(_KNOWN_KEYS, {"keys": old})).fetchall()
            }
        strays = [key for key in old if key not in known]
        if strays:
            deleted += await delete_keys(s3, bucket, strays)
    return deleted
