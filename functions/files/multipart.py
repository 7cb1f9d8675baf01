"""Reading a multipart/form-data upload as it streams in, with python-multipart's push parser.

The files service takes a file name and an async stream of the file's bytes; this turns a
request body into those. `FormReader.file_part()` reads up to the headers of the part named
`file` (keeping the fields before it); `file_bytes()` then yields the file's bytes as they
arrive and goes on to the end of the body, keeping the fields after the file. That stream
ends only once the closing boundary has been read: a body cut short makes it raise, so the
service removes what it stored and a truncated body is never kept as if it were the file.
Held here at any time: one body chunk's worth of file bytes (plus the few the parser kept
back from the chunk before, in case they began a boundary), and the small fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from shared.domain.files.disposition import header_text, parse_disposition
from shared.platform.errors import UnsupportedMediaType, ValidationError
from shared.platform.runtime.inputs import check_storable

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FORM_OVERHEAD_BYTES = 64 << 10  # boundaries and small fields beside the file, in the body
MAX_FIELDS = 16
MAX_FIELD_BYTES = 4096


@dataclass(frozen=True)
class FilePart:
    """The file part's name and content type, as the client sent them (not yet sanitized)."""

    filename: str
    content_type: str | None


class _Parts:
    """The parser's callbacks: which part we are in, its headers, and where its bytes go."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.file: FilePart | None = None
        self.pending = bytearray()  # file bytes parsed, not yet handed on
        self.header_field, self.header_value = bytearray(), bytearray()
        self.headers: dict[str, str] = {}
        self.field_name: str | None = None
        self.field_value = bytearray()
        self.in_file = False
        self.ended = False  # the closing boundary was read

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda d, s, e: self.header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self.header_value.extend(d[s:e]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

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
            if len(self.fields) >= MAX_FIELDS:
                raise ValidationError(f"at most {MAX_FIELDS} form fields")
            self.field_name = name
            return
        if name != "file" or self.file is not None:
            raise ValidationError("send exactly one file, in the form field named 'file'")
        self.in_file = True
        self.file = FilePart(filename, self.headers.get("content-type"))

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending += data[start:end]
            return
        self.field_value += data[start:end]
        if len(self.field_value) > MAX_FIELD_BYTES:
            raise ValidationError(f"form field {self.field_name!r} is too long")

    def part_end(self) -> None:
        if self.field_name is not None and not self.in_file:
            self.fields[self.field_name] = self.field_value.decode("utf-8", "replace")

    def end(self) -> None:
        self.ended = True

    def take(self) -> bytes:
        chunk, self.pending = bytes(self.pending), bytearray()
        return chunk


class FormReader:
    """One multipart/form-data body with one file part named `file`; the other fields are in
    `fields`, complete once `file_bytes()` has ended."""

    def __init__(
        self, content_type: str, body: AsyncIterable[bytes], *,
        declared_bytes: int | None = None,
    ) -> None:  # fmt: skip
        media, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if media != b"multipart/form-data":
            raise UnsupportedMediaType("send the file as multipart/form-data")
        if not boundary:
            raise ValidationError("the multipart/form-data content type names no boundary")
        # The body's size as the client declared it (Content-Length), to refuse an upload
        # that cannot fit before reading any of it; the cap itself is enforced as bytes come.
        self.declared_bytes = declared_bytes
        self._body = aiter(body)
        self._parts = _Parts()
        self._parser = MultipartParser(boundary, self._parts.callbacks())

    @property
    def fields(self) -> dict[str, str]:
        return self._parts.fields

    async def file_part(self) -> FilePart:
        """Reads up to the file part's headers; 400 when the body holds no file part."""
        while self._parts.file is None:
            if not await self._read():
                raise ValidationError("no file in the form (field 'file')")
        return self._parts.file

    async def file_bytes(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive (after `file_part`). Raises, instead of ending,
        when the body stops before its closing boundary or a field is refused."""
        if self._parts.file is None:
            raise RuntimeError("file_part() first")
        while True:
            if self._parts.pending:
                yield self._parts.take()
            if not await self._read():
                break
        check_storable(self._parts.fields, where="form")

    async def _read(self) -> bool:
        """Feeds the parser the next body chunk; False at the end of a complete body."""
        chunk = await anext(self._body, None)
        try:
            if chunk is not None:
                self._parser.write(chunk)
                return True
            self._parser.finalize()
        except ValueError as exc:  # python-multipart's parse errors (ours are AppErrors)
            raise ValidationError(f"malformed multipart body: {exc}") from exc
        if not self._parts.ended:  # python-multipart's finalize does not check this itself
            raise ValidationError("the multipart body ends before its closing boundary")
        return False
