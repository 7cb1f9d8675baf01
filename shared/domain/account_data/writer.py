"""Writes one export: a zip in a temporary file, streamed part by part (rows through a
server-side cursor, objects in chunks), so memory stays flat however much the user has; then
one managed (multipart) upload to the store. Nothing is left in the store unless the whole
zip made it: a failed or oversized export deletes its key.

The zip: `manifest.json` (what each part is, with its row or object count), `{part}.json`
(a JSON array of rows per part, shared.domain.account_data.parts) and `objects/...` (every
object under the user's users/{uid}/ prefix, by its path below it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import psycopg

from shared.domain.account_data.parts import PARTS
from shared.platform.runtime.batch import PermanentFailure

CHUNK_BYTES = 1024 * 1024
FORMAT_VERSION = 1


class ExportTooLarge(PermanentFailure):
    """Past EXPORT_MAX_BYTES: the same data is as large on every try."""


@dataclass(frozen=True)
class Written:
    key: str
    size_bytes: int


class _Budget:
    """Counts what goes into the zip (uncompressed: a bound known before compressing)."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.used = max_bytes, 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.max_bytes:
            raise ExportTooLarge(f"the export is over EXPORT_MAX_BYTES ({self.max_bytes} bytes)")


async def _write_rows(
    conn: psycopg.AsyncConnection, archive: zipfile.ZipFile, name: str, sql: str, user_id: str,
    budget: _Budget,
) -> int:  # fmt: skip
    """One part as a JSON array, row by row from a server-side cursor; the row count."""
    count = 0
    async with conn.transaction(), conn.cursor(name=f"export_{name}") as cursor:
        await cursor.execute(sql, {"uid": user_id})
        with archive.open(f"{name}.json", "w", force_zip64=True) as out:
            out.write(b"[")
            async for (row,) in cursor:
                data = json.dumps(row, ensure_ascii=False, default=str).encode()
                budget.take(len(data) + 2)
                out.write(b",\n" if count else b"\n")
                out.write(data)
                count += 1
            out.write(b"\n]\n")
    return count


def _pages(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _copy_object(s3: Any, bucket: str, key: str, out: IO[bytes]) -> None:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        for chunk in iter(lambda: body.read(CHUNK_BYTES), b""):
            out.write(chunk)
    finally:
        body.close()


async def _write_objects(
    s3: Any, bucket: str, archive: zipfile.ZipFile, user_id: str, budget: _Budget
) -> int:
    prefix = f"users/{user_id}/"
    listed = await asyncio.to_thread(lambda: list(_pages(s3, bucket, prefix)))
    for item in listed:
        budget.take(int(item.get("Size", 0)))
        name = "objects/" + item["Key"][len(prefix) :]
        with archive.open(name, "w", force_zip64=True) as out:
            await asyncio.to_thread(_copy_object, s3, bucket, item["Key"], out)
    return len(listed)


async def write_export(
    conn: psycopg.AsyncConnection, s3: Any, bucket: str, *, user_id: str, export_id: str,
    key: str, max_bytes: int, tmp_dir: str | None = None,
) -> Written:  # fmt: skip
    """Builds the zip of `user_id`'s data and uploads it to `key`; the zip's size."""
    budget = _Budget(max_bytes)
    fd, path = tempfile.mkstemp(prefix="export-", suffix=".zip", dir=tmp_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            manifest: dict[str, Any] = {
                "format_version": FORMAT_VERSION, "export_id": export_id, "user_id": user_id,
                "created_at": datetime.now(UTC).isoformat(), "parts": [],
            }  # fmt: skip
            for part in PARTS:
                count = await _write_rows(conn, archive, part.name, part.sql, user_id, budget)
                manifest["parts"].append({"file": f"{part.name}.json", "rows": count,
                                          "description": part.description})  # fmt: skip
            objects = await _write_objects(s3, bucket, archive, user_id, budget)
            manifest["parts"].append({"file": "objects/", "objects": objects,
                                      "description": "the user's objects in the store: files/"
                                      " (uploads as sent), voice/ (recordings), adapters/"
                                      " (adapter versions and training datasets)"})  # fmt: skip
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        size = (await asyncio.to_thread(os.stat, path)).st_size
        if size > max_bytes:
            raise ExportTooLarge(f"the export is over EXPORT_MAX_BYTES ({max_bytes} bytes)")
        try:
            await asyncio.to_thread(
                s3.upload_file, path, bucket, key, ExtraArgs={"ContentType": "application/zip"}
            )
        except BaseException:
            # A managed upload aborts its multipart upload on failure; a single PUT that the
            # store took before the client gave up would be a whole zip: removed either way.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(s3.delete_object, Bucket=bucket, Key=key)
            raise
        return Written(key=key, size_bytes=size)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
