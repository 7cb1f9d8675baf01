"""Defensive body decoding (shared.platform.runtime.inputs) and multipart part headers
(shared.domain.files.disposition): whatever the bytes, a value or a 4xx AppError."""

from __future__ import annotations

import pytest

from shared.domain.files.disposition import header_text, parse_disposition
from shared.domain.files.names import sanitize_name
from shared.platform.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError
from shared.platform.runtime.inputs import (
    MAX_JSON_BODY_BYTES,
    MAX_JSON_DEPTH,
    check_storable,
    json_body,
    unstorable,
)

JSON = "application/json"


def test_an_empty_body_is_an_empty_object_whatever_its_type() -> None:
    assert json_body(b"", None) == {} and json_body(b"  ", "text/plain") == {}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1"])  # fmt: skip
def test_a_body_that_is_not_declared_utf8_json_is_a_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        json_body(b'{"a": 1}', content_type)


def test_json_media_types_are_accepted() -> None:
    for content_type in ("application/json", "Application/JSON; charset=UTF-8",
                         "application/problem+json"):  # fmt: skip
        assert json_body(b'{"a": 1}', content_type) == {"a": 1}


@pytest.mark.parametrize("payload", [b"\xff", b"\xc3(", '{"a": 1}'.encode("utf-16"), b"{",
                                     b'{"a": NaN}', b'{"a": Infinity}'])  # fmt: skip
def test_undecodable_or_unparsable_bodies_are_400s(payload: bytes) -> None:
    with pytest.raises(ValidationError):
        json_body(payload, JSON)


def test_nesting_is_limited_but_brackets_in_strings_are_text() -> None:
    ok = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert json_body(ok, JSON)
    with pytest.raises(ValidationError, match="nested deeper"):
        json_body(b"[" + ok + b"]", JSON)
    with pytest.raises(ValidationError, match="nested deeper"):
        json_body(b'{"a":' * 200_000, JSON)
    assert json_body(b'{"a": "[[[[\\"{{{{"}', JSON) == {"a": '[[[["{{{{'}


def test_size_is_checked_first() -> None:
    with pytest.raises(PayloadTooLarge):
        json_body(b" " * (MAX_JSON_BODY_BYTES + 1), "text/plain")


def test_unstorable_strings_are_found_with_their_path() -> None:
    value = {"a": ["ok", "x\x00"], "b\ud800": {"c": "\udfff"}, "d": 1}
    assert list(unstorable(value)) == [["a", 1], ["b\ud800"], ["b\ud800", "c"]]
    with pytest.raises(ValidationError) as raised:
        check_storable(value, where="request body")
    assert [d["loc"] for d in raised.value.details] == [["a", 1], ["b\\ud800"], ["b\\ud800", "c"]]
    check_storable({"emoji": "😀", "cjk": "文档", "n": None}, where="query")


def test_content_disposition_names_utf8_and_rfc5987() -> None:
    raw = 'form-data; name="file"; filename="文档.txt"'.encode()
    expected = ("form-data", {"name": "file", "filename": "文档.txt"})
    assert parse_disposition(header_text(raw)) == expected
    assert parse_disposition(header_text(b'form-data; filename="caf\xe9.txt"'))[1] == {
        "filename": "café.txt"  # not UTF-8: read as Latin-1
    }
    _, params = parse_disposition(
        "form-data; name=file; filename=\"plain.txt\"; filename*=UTF-8''%E6%96%87%20x.txt"
    )
    assert params == {"name": "file", "filename": "文 x.txt"}
    assert parse_disposition('form-data; filename="a\\"b.txt"')[1] == {"filename": 'a"b.txt'}
    for bad in ("form-data; filename*=KOI8-R''abc", "form-data; filename*=UTF-8''%FF",
                "form-data; filename*=plain"):  # fmt: skip
        with pytest.raises(ValidationError):
            parse_disposition(bad)


def test_decoded_names_are_still_sanitised() -> None:
    _, params = parse_disposition("form-data; filename*=UTF-8''..%2F..%2Fetc%2F%E6%96%87%00.txt")
    assert sanitize_name(params["filename"]) == "文_.txt"
