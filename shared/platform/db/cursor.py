"""Opaque keyset-pagination cursors: the sort key of the last row of a page, base64 JSON."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from shared.platform.errors import ValidationError


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """The `size` values of a cursor; a cursor that is not one of ours is a 400."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise ValidationError("invalid cursor") from exc
    if not isinstance(values, list) or len(values) != size:
        raise ValidationError("invalid cursor")
    return values


T = TypeVar("T")


def probe_size(limit: int) -> int:
    """How many rows a keyset query fetches for a page of `limit`: one more, to learn whether
    another page follows without counting."""
    return limit + 1


def keyset_page(
    rows: Sequence[T], limit: int, cursor_of: Callable[[T], Any]
) -> tuple[list[T], Any]:
    """The page (the first `limit` of `probe_size(limit)` rows) and, when more rows follow,
    `cursor_of` its last row; else None."""
    items = list(rows[:limit])
    return items, cursor_of(items[-1]) if len(rows) > limit and items else None
