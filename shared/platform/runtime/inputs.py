"""Decoding what a client sends, defensively: whatever the bytes, the answer is a value or a
400/413/415 in the envelope, never an exception from a codec, the JSON parser or, later,
Postgres (which refuses NUL characters and lone surrogates in text and JSONB).

One place for every route: `RouteTable.dispatch` calls `json_body` and `check_storable`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import islice
from typing import Any

from shared.platform.errors import PayloadTooLarge, UnsupportedMediaType, ValidationError

MAX_JSON_BODY_BYTES = 1 << 20
# Deeper than any request model goes, and far below what would exhaust the parser's stack.
MAX_JSON_DEPTH = 64
# What Postgres cannot store in text/JSONB: NUL, and UTF-16 surrogates (which JSON's \ud800
# escapes can produce, but which are no characters of UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _charset_is_utf8(content_type: str) -> bool:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower() in ("utf-8", "utf8")
    return True


def json_body(payload: bytes, content_type: str | None) -> Any:
    """The parsed JSON object of a request body; an empty body is `{}` (routes whose fields
    all have defaults take no body)."""
    if len(payload) > MAX_JSON_BODY_BYTES:
        raise PayloadTooLarge(f"request body over {MAX_JSON_BODY_BYTES} bytes")
    if not payload.strip():
        return {}
    if not content_type or not is_json_media_type(content_type):
        raise UnsupportedMediaType(
            "send the request body as application/json",
            details={"content_type": (content_type or "")[:100] or None},
        )
    if not _charset_is_utf8(content_type):
        raise UnsupportedMediaType("JSON bodies must be UTF-8 (charset=utf-8)")
    try:
        # Strict UTF-8: json.loads(bytes) would guess UTF-16/32 and raise UnicodeDecodeError.
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            "request body is not valid UTF-8", details={"position": exc.start}
        ) from None
    check_depth(text)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValidationError(
            "request body is not valid JSON", details={"error": str(exc)}
        ) from None


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); json.loads accepts them by default.
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


def check_depth(text: str) -> None:
    """Refuses nesting deeper than MAX_JSON_DEPTH before the recursive parser sees it
    (brackets inside strings do not count)."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise ValidationError(
                f"request body is nested deeper than {MAX_JSON_DEPTH} levels",
                details={"max_depth": MAX_JSON_DEPTH},
            )


def unstorable(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[list[str | int]]:
    """The JSON paths of strings (keys too) that Postgres would refuse."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            yield list(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _UNSTORABLE.search(key):
                yield [*path, key]
            yield from unstorable(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable(item, (*path, index))


def check_storable(value: Any, *, where: str) -> None:
    """400 naming each place (up to ten) holding a NUL or a lone surrogate."""
    found = [[_printable(part) for part in loc] for loc in islice(unstorable(value), 10)]
    if found:
        raise ValidationError(
            f"the {where} holds characters that cannot be stored (NUL or lone surrogates)",
            details=[{"loc": loc, "msg": "NUL and unpaired surrogates are not allowed",
                      "type": "string_unstorable"} for loc in found],
        )  # fmt: skip


def _printable(part: str | int) -> str | int:
    # A key with a lone surrogate cannot be encoded into the JSON answer as it is.
    return part.encode("utf-8", "backslashreplace").decode() if isinstance(part, str) else part
