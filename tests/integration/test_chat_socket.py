"""The WebSocket function's events as API Gateway sends them in AWS, on the real Redis and
Postgres, with the management API recorded: what AWS does where it cannot send a close code
(an `error` frame, then the connection deleted) shows here. Then boto3's management client
against the local gateway's management API, the adapter's other end."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.chat_socket.connections import ManagementApi
from functions.chat_socket.events import SocketEvent
from functions.chat_socket.main import handle
from infra.gateway.management import LoopbackListener, ManagementApp
from shared.platform.aws import management_api_client
from shared.services import Services
from tests.integration.authkit import PASSWORD, bearer, sign_up

pytestmark = pytest.mark.integration
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"


@pytest.fixture(scope="module")
async def services(migrated, settings):
    """A function process's services; the chat service needs a model URL to be built, and
    nothing here reaches the model (a turn refused before it starts, a cancel)."""
    made = Services.from_settings(
        settings.model_copy(update={"inference_url": "http://127.0.0.1:9"})
    )
    yield made
    await made.aclose()


class Recorded:
    """The Connections port, recording what the function sends and closes."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: list[str] = []

    async def send(self, connection_id: str, frame: dict[str, Any]) -> bool:
        self.frames.append(json.loads(json.dumps(frame, default=str)))
        return True

    async def close(self, connection_id: str) -> None:
        self.closed.append(connection_id)


class Socket:
    """One connection's events, as API Gateway would send them."""

    def __init__(self, services: Any) -> None:
        self.services, self.id, self.sent = services, uuid.uuid4().hex[:12] + "=", Recorded()

    def _event(self, kind: str, route: str, **extra: Any) -> SocketEvent:
        context = {"routeKey": route, "eventType": kind, "connectionId": self.id,
                   "domainName": HOST, "stage": "ws"}  # fmt: skip
        return SocketEvent.model_validate({"requestContext": context, **extra})

    async def connect(self, headers: dict[str, str] | None = None) -> int:
        headers = {"Host": HOST, "X-Forwarded-Proto": "https", **(headers or {})}
        event = self._event("CONNECT", "$connect", headers=headers)
        return await handle(event, services=self.services, connections=self.sent)

    async def frame(self, frame: Any) -> int:
        body = frame if isinstance(frame, str) else json.dumps(frame)
        event = self._event("MESSAGE", "$default", body=body)
        return await handle(event, services=self.services, connections=self.sent)

    async def disconnect(self) -> int:
        event = self._event("DISCONNECT", "$disconnect", headers={"Host": HOST})
        return await handle(event, services=self.services, connections=self.sent)

    async def principal(self) -> dict[str, Any] | None:
        value = await self.services.redis.get(f"ws:principal:{self.id}")
        return json.loads(value) if value else None


def _refused(socket: Socket) -> bool:
    """What AWS shows instead of close code 4401: an `unauthorized` error frame, then the
    connection deleted."""
    return socket.sent.frames[-1]["error"]["code"] == "unauthorized" and socket.sent.closed == [
        socket.id
    ]


@pytest.mark.parametrize(
    "first",
    [{"type": "ping"}, {"type": "auth", "token": "not-a-jwt"}, {"type": "auth"},
     {"type": "auth", "session": 42}, "not json"],
)  # fmt: skip
async def test_a_socket_that_does_not_authenticate_first_is_refused(services, first) -> None:
    socket = Socket(services)
    assert await socket.connect() == 200
    assert await socket.frame(first) == 401
    assert _refused(socket) and len(socket.sent.frames) == 1
    assert await socket.principal() is None


async def test_the_auth_frame_keeps_the_principal_in_redis_until_disconnect(
    services, settings, api
) -> None:
    signed = await sign_up(api)
    socket = Socket(services)
    await socket.connect()
    assert await socket.frame({"type": "auth", "session": signed["access_token"]}) == 200
    assert socket.sent.frames == [{"type": "auth_ok", "user_id": signed["user"]["id"]}]
    assert await socket.principal() == {"user_id": signed["user"]["id"], "role": "user",
                                        "session_id": signed["session_id"]}  # fmt: skip
    ttl = await services.redis.ttl(f"ws:principal:{socket.id}")
    assert 0 < ttl <= settings.auth_access_ttl_s  # as long as the token it came from
    assert await socket.frame({"type": "ping"}) == 200
    assert socket.sent.frames[-1] == {"type": "pong"} and not socket.sent.closed
    assert await socket.disconnect() == 200
    assert await socket.principal() is None
    assert await socket.frame({"type": "ping"}) == 401 and _refused(socket)


async def test_a_revoked_session_cannot_start_another_turn(services, api) -> None:
    signed = await sign_up(api)
    socket = Socket(services)
    await socket.connect()
    await socket.frame({"type": "auth", "token": signed["access_token"]})
    await api.post("/v1/auth/logout", headers=bearer(signed["access_token"]))
    turn = {"type": "chat_start", "message": {"content": "hello"}}
    assert await socket.frame(turn) == 401
    assert _refused(socket) and await socket.principal() is None
    assert not [f for f in socket.sent.frames if "event" in f]  # no turn started


async def test_the_upgrade_cookie_counts_only_from_an_allowed_origin(
    services, settings, api
) -> None:
    signed = await sign_up(api)
    login = {"email": signed["user"]["email"], "password": PASSWORD, "use_cookies": True}
    logged_in = await api.post("/v1/auth/login", json=login, headers={"Origin": "http://gateway"})
    cookie = logged_in.headers.get_list("set-cookie")[0].split(";", 1)[0]
    session_id = logged_in.json()["data"]["session_id"]

    evil = Socket(services)
    assert await evil.connect({"Cookie": cookie, "Origin": "https://evil.example"}) == 200
    assert await evil.frame({"type": "auth"}) == 401 and _refused(evil)

    own = Socket(services)
    await own.connect({"Cookie": cookie, "Origin": settings.public_url})
    assert await own.frame({"type": "auth", "session": session_id}) == 200
    assert (await own.principal() or {}).get("session_id") == session_id
    other = Socket(services)  # the cookie with another session's id
    await other.connect({"Cookie": cookie, "Origin": settings.public_url})
    assert await other.frame({"type": "auth", "session": signed["session_id"]}) == 401
    assert _refused(other)


async def test_bad_frames_after_auth_get_error_frames_and_the_socket_stays(services, api) -> None:
    signed = await sign_up(api)
    socket = Socket(services)
    await socket.connect()
    await socket.frame({"type": "auth", "token": signed["access_token"]})
    for frame in ({"type": "dance"}, "not json"):
        assert await socket.frame(frame) == 200
        assert socket.sent.frames[-1]["error"]["code"] == "validation_error"
    assert await socket.frame({"type": "chat_start", "message": {"content": " "}}) == 200
    refused = socket.sent.frames[-1]
    assert refused["event"] == "error" and refused["data"]["code"] == "validation_error"
    unknown = str(uuid.uuid4())
    assert await socket.frame({"type": "cancel", "request_id": unknown}) == 200
    assert socket.sent.frames[-1] == {
        "event": "error", "request_id": unknown,
        "data": {"code": "not_found", "message": "no running chat request with that id",
                 "details": None},
    }  # fmt: skip
    assert not socket.sent.closed and await socket.principal() is not None


async def test_boto3s_management_client_reaches_the_local_gateways_api(settings) -> None:
    class Connection:
        def __init__(self) -> None:
            self.posted: list[bytes] = []
            self.deleted = 0

        def info(self) -> dict[str, object]:
            return {"connectedAt": "2026-01-01T00:00:00Z"}

        async def post(self, data: bytes) -> bool:
            self.posted.append(data)
            return True

        async def delete(self) -> None:
            self.deleted += 1

    open_one = Connection()
    listener = LoopbackListener(ManagementApp({"c1=": open_one}))
    port = await listener.start()
    try:
        endpoint = f"http://127.0.0.1:{port}/ws"
        client = management_api_client(settings, endpoint)

        def call(operation: str, **kwargs: Any) -> Any:  # off the loop that serves the API
            return asyncio.to_thread(getattr(client, operation), **kwargs)

        await call("post_to_connection", ConnectionId="c1=", Data=b'{"type": "pong"}')
        assert open_one.posted == [b'{"type": "pong"}']
        with pytest.raises(ClientError) as gone:
            await call("post_to_connection", ConnectionId="nobody", Data=b"{}")
        assert gone.value.response["Error"]["Code"] == "GoneException"
        assert isinstance(gone.value, client.exceptions.GoneException)
        info = await call("get_connection", ConnectionId="c1=")
        assert info["ConnectedAt"].year == 2026
        await call("delete_connection", ConnectionId="c1=")
        assert open_one.deleted == 1
        # The function's adapter, from an event naming the local gateway's loopback port.
        event = SocketEvent.model_validate({"requestContext": {
            "routeKey": "$default", "eventType": "MESSAGE", "connectionId": "c1=",
            "domainName": f"127.0.0.1:{port}", "stage": "ws"}})  # fmt: skip
        adapter = ManagementApi.for_event(event.requestContext, settings)
        assert await adapter.send("c1=", {"type": "pong"}) is True
        assert await adapter.send("nobody", {"type": "pong"}) is False
    finally:
        await listener.stop()
