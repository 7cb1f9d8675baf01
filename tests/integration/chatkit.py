"""Helpers for chat tests: the in-process gateway pointed at the session's inference service,
SSE reading, and a user with a token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration.authkit import bearer, sign_up
from tests.integration.conftest import gateway_client


@pytest.fixture
async def chat_api(settings, model_services):
    """`api` whose chat and tools functions call the real inference service of this
    session."""
    async with gateway_client(settings, model_services) as client:
        yield client


async def user(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    signed = await sign_up(client)
    return signed["user"]["id"], bearer(signed["access_token"])


def parse_sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        events.append((name, json.loads("\n".join(data)) if data else None))
    return events


def tokens_of(events: list[tuple[str, Any]]) -> str:
    return "".join(data for name, data in events if name == "token")
