"""Streaming a file's bytes straight into the object store.

An `ObjectSink` takes the bytes as they arrive (whatever the transport: the files function
parses them out of a multipart body) and sends them to S3 in PART_BYTES parts (a single PUT
when the file is smaller), hashing and counting on the way. At most one part (plus the chunk
being fed) is held in memory, whatever the file's size; past the size cap, or when the stream
itself fails, the upload is aborted and nothing stays in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable
from typing import Any

from shared.platform.errors import PayloadTooLarge

PART_BYTES = 8 << 20  # S3 parts must be >= 5 MiB except the last


class ObjectSink:
    """One object written as a stream. `abort` removes whatever was written."""

    def __init__(self, s3: Any, bucket: str, key: str, *, content_type: str, max_bytes: int):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.content_type, self.max_bytes = content_type, max_bytes
        self.size = 0
        self._sha = hashlib.sha256()
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._stored = False

    @property
    def checksum(self) -> str:
        return self._sha.hexdigest()

    async def write(self, chunks: AsyncIterable[bytes]) -> None:
        """The whole stream, stored; on any failure (the cap, the stream raising, the store)
        whatever was written is removed before the error goes on."""
        try:
            async for chunk in chunks:
                self.feed(chunk)
                await self.flush()
            await self.close()
        except BaseException:
            # Shielded: a cancelled request must still not leave a half-written object.
            await asyncio.shield(self.abort())
            raise

    def feed(self, data: bytes) -> None:
        """Synchronous and cheap (counted against the cap before it is kept); `flush` does
        the IO."""
        self.size += len(data)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(
                f"file is over the {self.max_bytes} byte limit of your plan",
                details={"max_bytes": self.max_bytes},
            )
        self._sha.update(data)
        self._buffer += data

    async def flush(self) -> None:
        while len(self._buffer) >= PART_BYTES:
            part, self._buffer = bytes(self._buffer[:PART_BYTES]), self._buffer[PART_BYTES:]
            await self._send_part(part)

    async def _send_part(self, data: bytes) -> None:
        if self._upload_id is None:
            started = await asyncio.to_thread(
                self.s3.create_multipart_upload,
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type,
            )  # fmt: skip
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        sent = await asyncio.to_thread(
            self.s3.upload_part, Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
            PartNumber=number, Body=data,
        )  # fmt: skip
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def close(self) -> None:
        if self._upload_id is None:
            await asyncio.to_thread(
                self.s3.put_object, Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer),
                ContentType=self.content_type,
            )  # fmt: skip
        else:
            if self._buffer:
                await self._send_part(bytes(self._buffer))
            await asyncio.to_thread(
                self.s3.complete_multipart_upload, Bucket=self.bucket, Key=self.key,
                UploadId=self._upload_id, MultipartUpload={"Parts": self._parts},
            )  # fmt: skip
        self._buffer = bytearray()
        self._stored = True

    async def abort(self) -> None:
        if self._upload_id is not None and not self._stored:
            await asyncio.to_thread(
                self.s3.abort_multipart_upload,
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
            )  # fmt: skip
        if self._stored:
            await asyncio.to_thread(self.s3.delete_object, Bucket=self.bucket, Key=self.key)
