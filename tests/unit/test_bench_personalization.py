"""The personalization benchmark's own logic: its statistics, and a client that outlives an
access token (the run takes longer than one lives)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bench.harness import RefreshingBearer
from bench.personalization.report import Rate


def test_wilson_intervals_match_the_textbook_values() -> None:
    # Wilson (1927), as tabulated by Newcombe (1998): 81/263 -> 0.2553-0.3662.
    low, high = Rate(81, 263).wilson()
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert Rate(0, 30).wilson()[0] == 0.0 and 0.11 < Rate(0, 30).wilson()[1] < 0.12
    assert Rate(30, 30).wilson()[1] == 1.0 and 0.88 < Rate(30, 30).wilson()[0] < 0.89
    assert Rate(0, 30).overlaps(Rate(3, 30)) and not Rate(0, 30).overlaps(Rate(24, 30))


def _streamed(status: int, body: object) -> httpx.Response:
    """A response whose body is not read yet, as a real transport gives it."""
    return httpx.Response(status, stream=httpx.ByteStream(json.dumps(body).encode()))


async def test_an_expired_token_is_refreshed_once_for_concurrent_requests() -> None:
    state = {"access": "old", "refreshes": 0}

    async def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/refresh":
            assert json.loads(request.content) == {"refresh_token": f"r-{state['refreshes']}"}
            await asyncio.sleep(0.01)  # the others arrive meanwhile
            state["refreshes"] += 1
            state["access"] = f"new-{state['refreshes']}"
            tokens = {"access_token": state["access"], "refresh_token": f"r-{state['refreshes']}"}
            return _streamed(200, {"status": "ok", "data": tokens})
        if request.headers["authorization"] != f"Bearer {state['access']}":
            return _streamed(401, {"status": "error"})
        return _streamed(200, {"status": "ok", "data": request.url.path})

    auth = RefreshingBearer("old", "r-0")
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(server), base_url="http://t", auth=auth
    ) as http:
        state["access"] = "rotated"  # every token the client holds is now stale
        answers = await asyncio.gather(*(http.get(f"/v1/x{n}") for n in range(5)))
    assert [(a.status_code, a.json()["data"]) for a in answers] == [
        (200, f"/v1/x{n}") for n in range(5)
    ]
    assert state["refreshes"] == 1 and auth.access == "new-1"


@pytest.mark.parametrize("path", ["/v1/auth/login", "/v1/auth/refresh"])
async def test_auth_routes_are_not_retried(path: str) -> None:
    calls = []

    def server(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(401, json={"status": "error"})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(server), base_url="http://t", auth=RefreshingBearer("a", "r")
    ) as http:
        assert (await http.post(path)).status_code == 401
    assert calls == [path]
