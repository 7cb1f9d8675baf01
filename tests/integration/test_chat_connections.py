"""A chat turn never holds two pool connections at once (a nested checkout starves a busy pool:
each waiting turn holds the connection the others need), and how many it takes is known."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.chatkit import chat_api, user  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def counting_checkouts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts every checkout from any pool of this process, and those taken while another was
    still held."""
    counts = {"checkouts": 0, "nested": 0, "held": 0}
    original = AsyncConnectionPool.connection

    @contextlib.asynccontextmanager
    async def counted(self: AsyncConnectionPool, *args: Any, **kwargs: Any) -> Any:
        counts["checkouts"] += 1
        counts["nested"] += counts["held"] > 0
        counts["held"] += 1
        try:
            async with original(self, *args, **kwargs) as conn:
                yield conn
        finally:
            counts["held"] -= 1

    monkeypatch.setattr(AsyncConnectionPool, "connection", counted)
    return counts


async def test_a_turn_takes_its_connections_one_at_a_time(chat_api, monkeypatch) -> None:  # noqa: F811
    _, headers = await user(chat_api)
    first = await chat_api.post("/v1/chat", headers=headers, json={"message": {"content": "Hi"}})
    assert first.status_code == 200, first.text
    counts = counting_checkouts(monkeypatch)
    body = {"conversation_id": first.json()["data"]["conversation_id"],
            "message": {"content": "And then?"}}  # fmt: skip
    answer = await chat_api.post("/v1/chat", headers=headers, json=body)
    assert answer.status_code == 200, answer.text
    # open (validate + write the question), memory, routing sources, the answer's write.
    assert counts["nested"] == 0, counts
    assert counts["checkouts"] <= 4, counts
