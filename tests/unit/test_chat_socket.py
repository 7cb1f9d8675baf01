"""The WebSocket function's pure parts: API Gateway's events as AWS sends them, the frame
parser, and the management-API adapter over a fake boto3 client."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.chat_socket.connections import ManagementApi, management_endpoint
from functions.chat_socket.events import SocketEvent
from shared.platform.errors import ValidationError

# The shapes of AWS's documented $connect and $default events (trimmed of ids).
CONNECT = {
    "headers": {"Host": "abc123.execute-api.eu-west-1.amazonaws.com",
                "Origin": "https://chat.example", "Cookie": "acs_access=t; other=1",
                "Sec-WebSocket-Version": "13", "X-Forwarded-Proto": "https"},
    "multiValueHeaders": {"Host": ["abc123.execute-api.eu-west-1.amazonaws.com"]},
    "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "stage": "ws",
                       "connectionId": "L0SM9cOFvHcCIhw=", "messageDirection": "IN",
                       "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
                       "requestId": "request", "apiId": "abc123", "connectedAt": 1,
                       "identity": {"sourceIp": "192.0.2.1"}},
    "isBase64Encoded": False,
}  # fmt: skip


def _message(body: str, *, binary: bool = False) -> SocketEvent:
    context = {**CONNECT["requestContext"], "routeKey": "$default", "eventType": "MESSAGE",
               "messageId": "m1"}  # fmt: skip
    return SocketEvent.model_validate(
        {"requestContext": context, "body": body, "isBase64Encoded": binary}
    )


def test_aws_events_parse() -> None:
    event = SocketEvent.model_validate(CONNECT)
    assert event.requestContext.eventType == "CONNECT"
    assert event.header("origin") == "https://chat.example"
    assert _message('{"type": "ping"}').frame() == {"type": "ping"}
    binary = base64.b64encode(b'{"type": "ping"}').decode()
    assert _message(binary, binary=True).frame() == {"type": "ping"}


@pytest.mark.parametrize(
    "body", ["", "not json", "[1, 2]", '"auth"', '{"type": "auth", "session": "a\\u0000b"}']
)
def test_a_frame_that_is_no_storable_json_object_is_a_validation_error(body: str) -> None:
    with pytest.raises(ValidationError):
        _message(body).frame()


def test_the_management_endpoint_is_the_apis_own_or_the_local_gateways() -> None:
    assert (management_endpoint("abc123.execute-api.eu-west-1.amazonaws.com", "ws")
            == "https://abc123.execute-api.eu-west-1.amazonaws.com/ws")  # fmt: skip
    assert management_endpoint("127.0.0.1:40123", "ws") == "http://127.0.0.1:40123/ws"
    assert management_endpoint("[::1]:40123", "ws") == "http://[::1]:40123/ws"


class FakeManagementClient:
    """What the adapter calls of boto3's `apigatewaymanagementapi` client."""

    def __init__(self, *, gone: set[str] = frozenset(), broken: bool = False) -> None:
        self.gone, self.broken = gone, broken
        self.posted: list[tuple[str, Any]] = []
        self.deleted: list[str] = []

    def _check(self, connection_id: str, operation: str) -> None:
        if self.broken:
            raise ClientError({"Error": {"Code": "ForbiddenException"}}, operation)
        if connection_id in self.gone:
            raise ClientError({"Error": {"Code": "GoneException"}}, operation)

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> None:
        self._check(ConnectionId, "PostToConnection")
        self.posted.append((ConnectionId, json.loads(Data)))

    def delete_connection(self, *, ConnectionId: str) -> None:
        self._check(ConnectionId, "DeleteConnection")
        self.deleted.append(ConnectionId)


async def test_the_adapter_posts_json_frames_and_deletes_connections() -> None:
    client = FakeManagementClient(gone={"left"})
    api = ManagementApi(lambda: client)
    assert await api.send("c1", {"type": "pong"}) is True
    assert await api.send("left", {"type": "pong"}) is False  # the client has gone
    await api.close("c1")
    await api.close("left")  # closing a gone connection is no error
    assert client.posted == [("c1", {"type": "pong"})]
    assert client.deleted == ["c1"]


async def test_the_adapter_raises_what_is_not_a_gone_connection() -> None:
    api = ManagementApi(lambda: FakeManagementClient(broken=True))
    with pytest.raises(ClientError):
        await api.send("c1", {"type": "pong"})
    with pytest.raises(ClientError):
        await api.close("c1")
