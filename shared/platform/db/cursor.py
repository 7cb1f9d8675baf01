"""Opaque keyset-pagination cursors: the sort key of the last row of a page, base64 JSON."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from shared.platform.db.pool import Connection
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


def time_id_after(cursor: str) -> tuple[datetime, str]:
    """The (timestamp, UUID) a newest-first cursor resumes after; a 400 if not one of ours."""
    at, last_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), str(uuid.UUID(last_id))
    except (TypeError, ValueError) as exc:
        raise ValidationError("invalid cursor") from exc


async def newest_first(
    conn: Connection, query: str, params: Mapping[str, Any], *, order: tuple[str, str],
    cursor: str | None, limit: int, row: Callable[[Any], T],
    key: Callable[[T], tuple[datetime, str]],
) -> tuple[list[T], str | None]:  # fmt: skip
    """One page of `query` (a SELECT whose WHERE takes further conditions after ` AND `),
    newest first on the (timestamp, id) columns `order`, resumed after `cursor`; `row` makes
    each item and `key` gives an item's (timestamp, id) for the next page's cursor."""
    at, ident = order
    bound = {**params, "limit": probe_size(limit)}
    sql = query
    if cursor:
        bound["after_at"], bound["after_id"] = time_id_after(cursor)
        sql += f" AND ({at}, {ident}) < (%(after_at)s::timestamptz, %(after_id)s::uuid)"
    sql += f" ORDER BY {at} DESC, {ident} DESC LIMIT %(limit)s"
    rows = await (await conn.execute(sql, bound)).fetchall()
    return keyset_page([row(r) for r in rows], limit, lambda item: encode_cursor(*key(item)))
