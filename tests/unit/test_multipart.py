"""The files function's streaming multipart reader (functions.files.multipart) and the object
sink it feeds (shared.domain.files.upload): fields on either side of the file, RFC 5987 names,
a body cut short, the caps while streaming, and that a failed stream leaves nothing in the
store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from functions.files import multipart
from functions.files.multipart import FormReader
from shared.domain.files import upload
from shared.domain.files.upload import ObjectSink
from shared.platform.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError

BOUNDARY = "xYz0"
FORM = f"multipart/form-data; boundary={BOUNDARY}"


def field(name: str, value: str) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()  # fmt: skip


def file_part(data: bytes, disposition: str = 'name="file"; filename="a.txt"') -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n"
    return (head + "Content-Type: text/plain\r\n\r\n").encode() + data + b"\r\n"


CLOSE = f"--{BOUNDARY}--\r\n".encode()


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(body), size):
        yield body[at : at + size]


async def read(body: bytes, size: int = 7) -> tuple[multipart.FilePart, bytes, dict[str, str]]:
    form = FormReader(FORM, pieces(body, size))
    part = await form.file_part()
    chunks = [chunk async for chunk in form.file_bytes()]
    # Held here: one body chunk, plus what the parser kept back as maybe a boundary ("\r\n--").
    assert all(len(chunk) <= size + len(BOUNDARY) + 4 for chunk in chunks)
    return part, b"".join(chunks), form.fields


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 16])
def test_fields_before_and_after_the_file_whatever_the_chunking(size: int) -> None:
    data = b"line one\r\n--xYz not a boundary\r\n\x00\xff binary"
    body = field("context_id", "c-1") + file_part(data) + field("chunk_size", "300") + CLOSE
    part, got, fields = asyncio.run(read(body, size))
    assert (part.filename, part.content_type, got) == ("a.txt", "text/plain", data)
    assert fields == {"context_id": "c-1", "chunk_size": "300"}


def test_rfc5987_filename_wins_over_the_plain_one() -> None:
    disposition = 'name="file"; filename="plain.txt"; filename*=UTF-8\'\'%E6%96%87%20%C3%BC.md'
    part, got, _ = asyncio.run(read(file_part(b"# hi", disposition) + CLOSE))
    assert (part.filename, got) == ("文 ü.md", b"# hi")
    unknown = disposition.replace("UTF-8''", "KOI8-R''")
    with pytest.raises(ValidationError, match="RFC 5987"):
        asyncio.run(read(file_part(b"# hi", unknown) + CLOSE))


@pytest.mark.parametrize("tail", [b"", b"\r\n", f"\r\n--{BOUNDARY}\r\n".encode()])
def test_a_body_without_its_closing_boundary_never_ends_the_file(tail: bytes) -> None:
    cut = file_part(b"the first half")[:-2] + tail  # the file part's data, then the cut

    async def consume() -> bytes:
        form = FormReader(FORM, pieces(cut, 5))
        await form.file_part()
        got = b""
        async for chunk in form.file_bytes():
            got += chunk
        return got

    with pytest.raises(ValidationError, match="closing boundary"):
        asyncio.run(consume())


def test_a_body_cut_before_any_file_part_is_a_closing_boundary_error() -> None:
    form = FormReader(FORM, pieces(field("context_id", "c")[:-2], 4))
    with pytest.raises(ValidationError, match="closing boundary"):
        asyncio.run(form.file_part())


@pytest.mark.parametrize(
    ("body", "message"),
    [(field("context_id", "c") + CLOSE, "no file in the form"),
     (file_part(b"x", 'name="other"; filename="a.txt"') + CLOSE, "exactly one file"),
     (field("context_id", "c" * (multipart.MAX_FIELD_BYTES + 1)) + file_part(b"x") + CLOSE,
      "too long"),
     (b"".join(field(f"f{n}", "v") for n in range(multipart.MAX_FIELDS + 1)) + file_part(b"x")
      + CLOSE, "at most"),
     (f"--{BOUNDARY}\r\nno colon here\r\n\r\n".encode(), "malformed multipart body")],
)  # fmt: skip
def test_forms_without_one_file_part_or_with_oversized_fields_are_refused(
    body: bytes, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        asyncio.run(read(body))


def test_a_second_file_or_an_unstorable_field_after_the_file_fails_its_stream() -> None:
    second = file_part(b"one") + file_part(b"two") + CLOSE
    with pytest.raises(ValidationError, match="exactly one file"):
        asyncio.run(read(second))
    nul = file_part(b"one") + field("context_id", "a\x00b") + CLOSE
    with pytest.raises(ValidationError, match="cannot be stored"):
        asyncio.run(read(nul))


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_only_multipart_form_data_is_read(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="multipart"):
        FormReader(content_type, pieces(b"", 1))
    with pytest.raises(ValidationError, match="no boundary"):
        FormReader("multipart/form-data", pieces(b"", 1))


class FakeS3:
    """Records what would be in the bucket: finished objects and open multipart uploads."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.open: dict[str, list[bytes]] = {}

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> None:
        self.objects[Key] = Body

    def create_multipart_upload(self, *, Key: str, **_: Any) -> dict[str, str]:
        self.open[Key] = []
        return {"UploadId": Key}

    def upload_part(self, *, UploadId: str, Body: bytes, **_: Any) -> dict[str, str]:
        self.open[UploadId].append(Body)
        return {"ETag": str(len(self.open[UploadId]))}

    def complete_multipart_upload(self, *, Key: str, UploadId: str, **_: Any) -> None:
        self.objects[Key] = b"".join(self.open.pop(UploadId))

    def abort_multipart_upload(self, *, UploadId: str, **_: Any) -> None:
        del self.open[UploadId]

    def delete_object(self, *, Key: str, **_: Any) -> None:
        del self.objects[Key]


async def chunks(parts: Iterable[bytes], fail: Exception | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail is not None:
        raise fail


def sink(s3: FakeS3, cap: int) -> ObjectSink:
    return ObjectSink(s3, "b", "k", content_type="text/plain", max_bytes=cap)


def test_a_stream_is_sent_in_parts_and_stored_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload, "PART_BYTES", 4)
    s3 = FakeS3()
    written = sink(s3, 100)
    asyncio.run(written.write(chunks([b"abc", b"defgh", b"ij"])))
    assert s3.objects == {"k": b"abcdefghij"} and not s3.open
    assert written.size == 10


@pytest.mark.parametrize("part_bytes", [4, 1 << 20])  # multipart upload, single PUT
def test_over_the_cap_or_a_failing_stream_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, part_bytes: int
) -> None:
    monkeypatch.setattr(upload, "PART_BYTES", part_bytes)
    s3 = FakeS3()
    with pytest.raises(PayloadTooLarge) as over:
        asyncio.run(sink(s3, 10).write(chunks([b"12345678", b"901"])))
    assert over.value.details == {"max_bytes": 10}
    with pytest.raises(ValidationError, match="closing boundary"):
        cut = ValidationError("the multipart body ends before its closing boundary")
        asyncio.run(sink(s3, 100).write(chunks([b"12345678", b"9"], fail=cut)))
    assert s3.objects == {} and s3.open == {}
