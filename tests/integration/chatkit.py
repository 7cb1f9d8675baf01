"""Helpers for chat tests: the in-process gateway pointed at the session's inference service,
SSE reading, and a user with a token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shared.chat import wiring
from shared.deps import get_deps
from tests.integration.authkit import bearer, sign_up
from tests.integration.conftest import TOKEN


@pytest.fixture
async def chat_api(api, service, monkeypatch):
    """`api` whose chat function calls the real inference service of this session (settings
    are read once per process, so the URL is set on them for the test's duration)."""
    settings = get_deps().settings.model_copy(
        update={"inference_url": service, "inference_token": SecretStr(TOKEN),
                "chat_max_tokens": 48}
    )  # fmt: skip
    use_settings(monkeypatch, settings)
    yield api
    wiring.reset()


def use_settings(monkeypatch, settings) -> None:
    """Points the chat and tools functions at `settings` (read by `shared.chat.wiring`)."""
    monkeypatch.setattr(wiring, "model_settings", lambda: settings)
    wiring.reset()


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
