"""Keyset pages: a query fetches `probe_size(limit)` rows; the page is the first `limit`, and a
cursor (of its last row) comes back only when another page follows."""

from __future__ import annotations

import pytest

from shared.platform.db.cursor import decode_cursor, encode_cursor, keyset_page, probe_size
from shared.platform.errors import ValidationError


def test_a_full_page_with_more_behind_it_has_the_cursor_of_its_last_row() -> None:
    rows = list(range(probe_size(3)))  # 0, 1, 2 and the probe row 3
    assert keyset_page(rows, 3, lambda n: f"after-{n}") == ([0, 1, 2], "after-2")


def test_the_last_page_has_no_cursor() -> None:
    assert keyset_page([0, 1, 2], 3, str) == ([0, 1, 2], None)
    assert keyset_page([0], 3, str) == ([0], None)
    assert keyset_page([], 3, str) == ([], None)


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor("2026-11-27T10:00:00+00:00", "id-1"), 2) == [
        "2026-11-27T10:00:00+00:00",
        "id-1",
    ]
    for bad in ("not base64 at all!", encode_cursor(1, 2, 3)):
        with pytest.raises(ValidationError):
            decode_cursor(bad, 2)
