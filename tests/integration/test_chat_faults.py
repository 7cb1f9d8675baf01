"""A chat turn whose model service dies: the stream ends with an `unavailable` error event, the
tokens already streamed are stored as the answer (marked with why it ended), and a turn asked
while the service is down gets 503 with Retry-After and leaves its question marked failed.

A dedicated inference service (killed here) and a gateway process over real HTTP: the
in-process ASGI client buffers whole responses, so it cannot stop a stream halfway."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.helpers import free_port, project_process
from tests.integration.authkit import bearer, sign_up
from tests.integration.chatkit import parse_sse, tokens_of
from tests.integration.conftest import TOKEN, start_inference, wait_inference_ready

pytestmark = pytest.mark.integration
LONG = "Write a very long story about a dragon and a knight."


@pytest.fixture
def doomed(migrated, tmp_path_factory):
    """(gateway url, inference process): an inference service of its own, for killing."""
    inference_url, inference = start_inference(tmp_path_factory, "doomed-inference")
    port = free_port()
    env = {"GATEWAY_PORT": str(port), "LOG_LEVEL": "INFO", "INFERENCE_URL": inference_url,
           "INFERENCE_TOKEN": TOKEN, "CHAT_MAX_TOKENS": "300"}  # fmt: skip
    log = tmp_path_factory.mktemp("faults-gw") / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    with inference as process:
        wait_inference_ready(inference_url)
        with project_process(["-m", "infra.gateway"], env=env, ready_url=url + "/healthz",
                             log_path=log):  # fmt: skip
            yield url, process


async def _messages(http: httpx.AsyncClient, conversation_id: str) -> list[dict]:
    listed = await http.get(f"/v1/conversations/{conversation_id}/messages")
    assert listed.status_code == 200, listed.text
    return listed.json()["data"]["items"]


async def _stream(http: httpx.AsyncClient, started: asyncio.Event) -> list:
    """One streamed turn to its end; sets `started` once three tokens have arrived."""
    buffer = ""
    body = {"message": {"content": LONG}, "stream": True}
    async with http.stream("POST", "/v1/chat", json=body) as streaming:
        assert streaming.status_code == 200
        async for chunk in streaming.aiter_text():
            buffer += chunk
            if buffer.count("event: token") >= 3:
                started.set()
    return parse_sse(buffer)


async def test_the_model_dying_mid_stream_keeps_the_partial_answers(doomed) -> None:
    url, inference = doomed
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        http.headers.update(bearer((await sign_up(http))["access_token"]))
        # Under load: two turns streaming at once (the per-user decode cap) when it dies.
        started = asyncio.Event()
        turns = [asyncio.create_task(_stream(http, started)) for _ in range(2)]
        await asyncio.wait_for(started.wait(), timeout=120)
        inference.kill()  # SIGKILL: no drain, the connections just break
        streams = await asyncio.wait_for(asyncio.gather(*turns), timeout=120)

        for events in streams:
            names = [name for name, _ in events]
            assert names[-1] == "error" and "message_done" not in names, names
            error = events[-1][1]
            assert error["code"] == "unavailable", error
            details = error["details"]
            assert details["reason"] == "unavailable"
            streamed = tokens_of(events)
            stored = await _messages(http, details["conversation_id"])
            if not streamed:  # killed before its first token: the question is marked failed
                assert [m["sender"] for m in stored] == ["user"]
                assert stored[0]["meta"]["turn_failed"]["reason"] == "unavailable"
                continue
            assert details["partial_chars"] == len(streamed)
            assert [m["sender"] for m in stored] == ["user", "assistant"]
            answer = stored[1]
            assert answer["id"] == details["message_id"] and answer["content"] == streamed
            assert answer["meta"]["finish_reason"] == "unavailable"
            assert answer["meta"]["ended_early"] is True
        assert any(tokens_of(events) for events in streams)

        # With the service gone: a clear 503 the client may retry, and the question is kept,
        # marked failed (not an orphan).
        conversation_id = streams[0][-1][1]["details"]["conversation_id"]
        before = len(await _messages(http, conversation_id))
        down = await http.post(
            "/v1/chat",
            json={"message": {"content": "Are you there?"}, "conversation_id": conversation_id},
        )
        assert down.status_code == 503, down.text
        assert down.headers.get("retry-after")
        assert down.json()["error"]["code"] == "unavailable"
        stored = await _messages(http, conversation_id)
        assert len(stored) == before + 1 and stored[-1]["sender"] == "user"
        assert stored[-1]["meta"]["turn_failed"]["reason"] == "unavailable"
