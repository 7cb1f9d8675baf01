"""Sending frames to a socket, and closing it: a small port with one adapter, API Gateway's
connection-management API (`post_to_connection`, `delete_connection`). In AWS it is the
WebSocket API's own; locally the gateway, which holds the sockets, serves the same API on the
loopback (infra/gateway/sockets.py), so this code is the same in both places.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from functions.chat_socket.events import SocketContext
from shared.platform.aws import management_api_client
from shared.platform.settings import Settings

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class Connections(Protocol):
    async def send(self, connection_id: str, frame: dict[str, Any]) -> bool:
        """False when the client has gone (nothing more will reach it)."""
        ...

    async def close(self, connection_id: str) -> None: ...


def management_endpoint(domain_name: str, stage: str) -> str:
    """API Gateway's management API is HTTPS on the API's domain; the local gateway's is plain
    HTTP on a loopback port (the events it sends name that port in `domainName`)."""
    scheme = "http" if urlsplit(f"//{domain_name}").hostname in _LOOPBACK else "https"
    return f"{scheme}://{domain_name}/{stage}"


def _gone(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "GoneException"


class ManagementApi:
    """The adapter: `make_client` gives a boto3 `apigatewaymanagementapi` client (made on first
    use: $connect and $disconnect send nothing)."""

    def __init__(self, make_client: Callable[[], Any]):
        self._make_client = make_client

    @classmethod
    def for_event(cls, context: SocketContext, settings: Settings) -> ManagementApi:
        endpoint = management_endpoint(context.domainName, context.stage)
        return cls(functools.partial(management_api_client, settings, endpoint))

    @functools.cached_property
    def client(self) -> Any:
        return self._make_client()

    async def send(self, connection_id: str, frame: dict[str, Any]) -> bool:
        data = json.dumps(frame, default=str).encode()
        try:
            await asyncio.to_thread(
                self.client.post_to_connection, ConnectionId=connection_id, Data=data
            )
        except ClientError as exc:
            if _gone(exc):
                return False
            raise
        return True

    async def close(self, connection_id: str) -> None:
        try:
            await asyncio.to_thread(self.client.delete_connection, ConnectionId=connection_id)
        except ClientError as exc:
            if not _gone(exc):  # already gone: closed all the same
                raise
