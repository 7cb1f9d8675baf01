"""WebSocket auth at the real gateway process: the first frame must be `{type: "auth"}` with a
valid token, or the socket closes with 4401. The gateway serves the template's WebSocket API
and the chat socket function behind it keeps each socket's principal in Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis
import websockets

from tests.helpers import free_port, project_process
from tests.integration.authkit import bearer, sign_up

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(migrated, tmp_path_factory):
    port = free_port()
    env = {"GATEWAY_PORT": str(port), "LOG_LEVEL": "INFO"}
    log = tmp_path_factory.mktemp("ws") / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    with project_process(
        ["-m", "infra.gateway"], env=env, ready_url=url + "/healthz", log_path=log
    ):
        yield f"ws://127.0.0.1:{port}/v1/chat/stream"


async def _closed_with(url: str, first_frame: dict) -> int | None:
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps(first_frame))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_socket_without_a_valid_auth_frame_closes_with_4401(gateway, api) -> None:
    signed = await sign_up(api)
    assert await _closed_with(gateway, {"type": "ping"}) == 4401
    assert await _closed_with(gateway, {"type": "auth", "token": "not-a-jwt"}) == 4401
    assert await _closed_with(gateway, {"type": "auth"}) == 4401  # no token, no cookie
    await api.post("/v1/auth/logout", headers=bearer(signed["access_token"]))
    ended = {"type": "auth", "token": signed["access_token"]}
    assert await _closed_with(gateway, ended) == 4401  # a revoked session


async def test_an_authenticated_socket_answers(gateway, api) -> None:
    signed = await sign_up(api)
    async with websockets.connect(gateway) as socket:
        await socket.send(json.dumps({"type": "auth", "token": signed["access_token"]}))
        assert json.loads(await socket.recv()) == {
            "type": "auth_ok",
            "user_id": signed["user"]["id"],
        }
        await socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await socket.recv()) == {"type": "pong"}


async def test_a_cookie_socket_from_another_site_is_refused(gateway, api) -> None:
    signed = await sign_up(api)
    login = {"email": signed["user"]["email"], "password": "correct horse battery staple",
             "use_cookies": True}  # fmt: skip
    response = await api.post("/v1/auth/login", json=login, headers={"Origin": "http://gateway"})
    cookie = response.headers.get_list("set-cookie")[0].split(";", 1)[0]
    headers = {"Cookie": cookie, "Origin": "https://evil.example"}
    async with websockets.connect(gateway, additional_headers=headers) as socket:
        await socket.send(json.dumps({"type": "auth"}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd.code == 4401
    own = {"Cookie": cookie, "Origin": gateway.replace("ws://", "http://").split("/v1")[0]}
    async with websockets.connect(gateway, additional_headers=own) as socket:
        await socket.send(json.dumps({"type": "auth"}))
        assert json.loads(await socket.recv())["type"] == "auth_ok"


async def test_the_spec_auth_frame_takes_session(gateway, api) -> None:
    """SPEC §18: `{"type": "auth", "session": "<session id or bearer token>"}`."""
    signed = await sign_up(api)
    async with websockets.connect(gateway) as socket:
        await socket.send(json.dumps({"type": "auth", "session": signed["access_token"]}))
        assert json.loads(await socket.recv())["user_id"] == signed["user"]["id"]
    assert await _closed_with(gateway, {"type": "auth", "session": "not-a-jwt"}) == 4401
    assert await _closed_with(gateway, {"type": "auth", "session": 42}) == 4401
    # A session id alone is no credential.
    assert await _closed_with(gateway, {"type": "auth", "session": signed["session_id"]}) == 4401


async def test_a_session_id_counts_only_with_that_sessions_cookie(gateway, api) -> None:
    signed = await sign_up(api)
    login = {"email": signed["user"]["email"], "password": "correct horse battery staple",
             "use_cookies": True}  # fmt: skip
    response = await api.post("/v1/auth/login", json=login, headers={"Origin": "http://gateway"})
    session_id = response.json()["data"]["session_id"]
    cookie = response.headers.get_list("set-cookie")[0].split(";", 1)[0]
    own = {"Cookie": cookie, "Origin": gateway.replace("ws://", "http://").split("/v1")[0]}
    async with websockets.connect(gateway, additional_headers=own) as socket:
        await socket.send(json.dumps({"type": "auth", "session": session_id}))
        assert json.loads(await socket.recv())["type"] == "auth_ok"
    # Another session's id with this cookie, or this id with the cookie from another site.
    async with websockets.connect(gateway, additional_headers=own) as socket:
        await socket.send(json.dumps({"type": "auth", "session": signed["session_id"]}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd.code == 4401
    evil = {"Cookie": cookie, "Origin": "https://evil.example"}
    async with websockets.connect(gateway, additional_headers=evil) as socket:
        await socket.send(json.dumps({"type": "auth", "session": session_id}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd.code == 4401


async def test_a_socket_that_sends_no_first_frame_is_closed_with_4401(gateway) -> None:
    async with websockets.connect(gateway) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()  # the gateway waits AUTH_FRAME_TIMEOUT_S (10 s) for the frame
    assert closed.value.rcvd.code == 4401


async def test_a_path_the_template_does_not_declare_refuses_the_handshake(gateway) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(gateway.replace("/v1/chat/stream", "/v1/chat/other")):
            pass
    assert refused.value.response.status_code == 403


async def test_a_session_revoked_mid_socket_gets_an_error_frame_then_the_socket_closes(
    gateway, api
) -> None:
    signed = await sign_up(api)
    async with websockets.connect(gateway) as socket:
        await socket.send(json.dumps({"type": "auth", "token": signed["access_token"]}))
        assert json.loads(await socket.recv())["type"] == "auth_ok"
        await api.post("/v1/auth/logout", headers=bearer(signed["access_token"]))
        await socket.send(json.dumps({"type": "chat_start", "message": {"content": "hi"}}))
        refused = json.loads(await socket.recv())
        assert refused["type"] == "error" and refused["error"]["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed):
            await socket.recv()


async def _principals(redis: aioredis.Redis, session_id: str) -> list[bytes]:
    keys = [key async for key in redis.scan_iter(match="ws:principal:*")]
    values = await redis.mget(keys) if keys else []
    return [k for k, v in zip(keys, values, strict=True)
            if v and json.loads(v)["session_id"] == session_id]  # fmt: skip


async def test_the_sockets_principal_is_in_redis_until_it_closes(gateway, api, settings) -> None:
    signed = await sign_up(api)
    redis = aioredis.Redis.from_url(settings.redis_dsn)
    try:
        async with websockets.connect(gateway) as socket:
            await socket.send(json.dumps({"type": "auth", "token": signed["access_token"]}))
            await socket.recv()
            (key,) = await _principals(redis, signed["session_id"])
            assert 0 < await redis.ttl(key) <= settings.auth_access_ttl_s
        # $disconnect reaches the function once the gateway sees the close.
        for _ in range(300):
            if not await _principals(redis, signed["session_id"]):
                break
            await asyncio.sleep(0.1)
        assert await _principals(redis, signed["session_id"]) == []
    finally:
        await redis.aclose()
