"""Streaming a multipart/form-data upload straight into the object store.

The request body is fed to python-multipart's push parser as it arrives; the file part's bytes
go to an `ObjectSink`, which sends them to S3 in PART_BYTES parts (a single PUT when the file
is smaller), hashing and counting on the way. At most one part is held in memory, whatever
the file's size; past the size cap the upload is aborted and nothing stays in the store.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from shared.domain.files.disposition import header_text, parse_disposition
from shared.platform.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError
from shared.platform.runtime.inputs import check_storable

PART_BYTES = 8 << 20  # S3 parts must be >= 5 MiB except the last
MAX_FIELDS = 16
MAX_FIELD_BYTES = 4096


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

    def feed(self, data: bytes) -> None:
        """Synchronous and cheap (called from the parser's callbacks); `flush` does the IO."""
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


# (filename as sent, content type as sent) -> the sink for the file part; may raise to refuse.
SinkFactory = Callable[[str, str | None], ObjectSink]


@dataclass
class FormUpload:
    fields: dict[str, str] = field(default_factory=dict)
    sink: ObjectSink | None = None


class _FormState:
    """The parser's callbacks: which part we are in, its headers, and where its bytes go."""

    def __init__(self, open_sink: SinkFactory):
        self.open_sink = open_sink
        self.form = FormUpload()
        self.header_field, self.header_value = bytearray(), bytearray()
        self.headers: dict[str, str] = {}
        self.field_name: str | None = None
        self.field_value = bytearray()
        self.in_file = False
        self.ended = False  # the closing boundary was read

    def part_begin(self) -> None:
        self.headers, self.field_name, self.field_value, self.in_file = {}, None, bytearray(), False

    def header_end(self) -> None:
        self.headers[self.header_field.decode("latin-1").lower()] = header_text(self.header_value)
        self.header_field, self.header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        _, options = parse_disposition(self.headers.get("content-disposition", ""))
        name = options.get("name", "")
        filename = options.get("filename")
        if filename is None:
            if len(self.form.fields) >= MAX_FIELDS:
                raise ValidationError(f"at most {MAX_FIELDS} form fields")
            self.field_name = name
            return
        if name != "file" or self.form.sink is not None:
            raise ValidationError("send exactly one file, in the form field named 'file'")
        self.in_file = True
        self.form.sink = self.open_sink(filename, self.headers.get("content-type"))

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            assert self.form.sink is not None
            self.form.sink.feed(data[start:end])
            return
        self.field_value += data[start:end]
        if len(self.field_value) > MAX_FIELD_BYTES:
            raise ValidationError(f"form field {self.field_name!r} is too long")

    def part_end(self) -> None:
        if self.field_name is not None and not self.in_file:
            self.form.fields[self.field_name] = self.field_value.decode("utf-8", "replace")

    def end(self) -> None:
        self.ended = True


async def receive_form(request: Request, open_sink: SinkFactory) -> FormUpload:
    """Parses the body as it streams in; the caller owns the sink (closed here on success,
    aborted here on any failure)."""
    media, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data":
        raise UnsupportedMediaType("send the file as multipart/form-data")
    if not boundary:
        raise ValidationError("the multipart/form-data content type names no boundary")
    state = _FormState(open_sink)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": state.part_begin,
            "on_header_field": lambda d, s, e: state.header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: state.header_value.extend(d[s:e]),
            "on_header_end": state.header_end,
            "on_headers_finished": state.headers_finished,
            "on_part_data": state.data,
            "on_part_end": state.part_end,
            "on_end": state.end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if state.form.sink is not None:
                await state.form.sink.flush()
        parser.finalize()
        if not state.ended:  # a truncated body must not be stored as if it were the file
            raise ValidationError("the multipart body ends before its closing boundary")
        if state.form.sink is None:
            raise ValidationError("no file in the form (field 'file')")
        check_storable(state.form.fields, where="form")
        await state.form.sink.close()
    except BaseException as exc:
        if state.form.sink is not None:
            await asyncio.shield(state.form.sink.abort())
        if isinstance(exc, ValueError) and not isinstance(exc, ValidationError):
            raise ValidationError(f"malformed multipart body: {exc}") from exc
        raise
    return state.form
