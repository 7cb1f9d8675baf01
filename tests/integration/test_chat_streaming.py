"""Streaming behaviour that needs a real server (the in-process ASGI client buffers whole
responses): a gateway process pointed at the session's inference service, over real HTTP and
WebSocket connections. Cancel mid-stream, a key in flight, and turns over the WebSocket (the
template's WebSocket API, served by the gateway, in front of the chat socket function)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from tests.helpers import free_port, project_process
from tests.integration.authkit import PASSWORD
from tests.integration.chatkit import parse_sse, tokens_of
from tests.integration.conftest import TOKEN

pytestmark = pytest.mark.integration
LONG = "Write a very long story about a dragon and a knight."


@pytest.fixture(scope="module")
def gateway(migrated, service, tmp_path_factory):
    port = free_port()
    env = {"GATEWAY_PORT": str(port), "LOG_LEVEL": "INFO", "INFERENCE_URL": service,
           "INFERENCE_TOKEN": TOKEN, "CHAT_MAX_TOKENS": "300"}  # fmt: skip
    log = tmp_path_factory.mktemp("chat-gw") / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    with project_process(["-m", "infra.gateway"], env=env, ready_url=url + "/healthz",
                         log_path=log):  # fmt: skip
        yield url


@pytest.fixture
async def client(gateway):
    async with httpx.AsyncClient(base_url=gateway, timeout=120) as http:
        email = f"{uuid.uuid4().hex}@example.test"
        signed = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert signed.status_code == 201, signed.text
        data = signed.json()["data"]
        http.headers["Authorization"] = f"Bearer {data['access_token']}"
        http.token = data["access_token"]  # type: ignore[attr-defined]
        yield http


async def test_cancel_mid_stream_acknowledges_and_keeps_the_partial_answer(client) -> None:
    buffer, cancelled = "", False
    body = {"message": {"content": LONG}, "stream": True}
    async with client.stream("POST", "/v1/chat", json=body) as streaming:
        assert streaming.status_code == 200
        request_id = streaming.headers["x-request-id"]
        async for chunk in streaming.aiter_text():
            buffer += chunk
            if not cancelled and buffer.count("event: token") >= 3:
                answer = await client.post("/v1/chat/cancel", json={"request_id": request_id})
                assert answer.status_code == 200, answer.text
                cancelled = True
    events = parse_sse(buffer)
    names = [name for name, _ in events]
    assert "cancel_ack" in names and names[-1] == "message_done"
    done = events[-1][1]
    assert done["cancelled"] is True and done["usage"]["completion_tokens"] < 300
    listed = await client.get(f"/v1/conversations/{done['conversation_id']}/messages")
    stored = listed.json()["data"]["items"]
    assert stored[-1]["meta"]["cancelled"] is True
    assert stored[-1]["content"] == tokens_of(events) != ""


async def test_a_key_still_in_flight_is_refused(client) -> None:
    keyed = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"message": {"content": LONG}, "stream": True}
    async with client.stream("POST", "/v1/chat", json=body, headers=keyed) as streaming:
        assert streaming.status_code == 200
        lines = streaming.aiter_lines()
        async for line in lines:
            if line.startswith("event: token"):
                break
        again = await client.post("/v1/chat", json=body, headers=keyed)
        assert again.status_code == 409
        assert again.json()["error"]["details"]["reason"] == "in_flight"
        await client.post("/v1/chat/cancel",
                          json={"request_id": streaming.headers["x-request-id"]})  # fmt: skip
        async for _ in lines:
            pass


async def test_a_turn_over_the_websocket(client, gateway) -> None:
    url = gateway.replace("http://", "ws://") + "/v1/chat/stream"
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": client.token}))
        assert json.loads(await socket.recv())["type"] == "auth_ok"
        question = {"content": "What is the capital of France?"}
        await socket.send(json.dumps({"type": "chat_start", "message": question}))
        frames = []
        while not frames or frames[-1].get("event") not in ("message_done", "error"):
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), 120)))
    assert frames[-1]["event"] == "message_done", frames[-1]
    assert {f["request_id"] for f in frames} == {frames[-1]["data"]["request_id"]}
    answer = "".join(f["data"] for f in frames if f["event"] == "token")
    assert "paris" in answer.lower()
    assert sum(f["event"] == "token" for f in frames) >= 2
    listed = await client.get(f"/v1/conversations/{frames[-1]['data']['conversation_id']}/messages")
    assert listed.json()["data"]["items"][-1]["content"] == answer


async def test_cancel_over_the_websocket(client, gateway) -> None:
    """Frames are handled concurrently: a ping and the cancel are answered while the turn they
    interrupt is still streaming."""
    url = gateway.replace("http://", "ws://") + "/v1/chat/stream"
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": client.token}))
        await socket.recv()
        await socket.send(json.dumps({"type": "chat_start", "message": {"content": LONG}}))
        frames, sent = [], False
        while not frames or frames[-1].get("event") not in ("message_done", "error"):
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), 120)))
            if not sent and sum(f.get("event") == "token" for f in frames) >= 3:
                await socket.send(json.dumps({"type": "ping"}))
                await socket.send(json.dumps({"type": "cancel",
                                              "request_id": frames[-1]["request_id"]}))  # fmt: skip
                sent = True
    events = [f.get("event") for f in frames]
    assert "cancel_ack" in events and frames[-1]["data"]["cancelled"] is True
    assert {"type": "pong"} in frames  # before message_done: not queued behind the turn
