"""WebSocket auth at the real gateway process: the first frame must be `{type: "auth"}` with a
valid token, or the socket closes with 4401."""

from __future__ import annotations

import json

import pytest
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
