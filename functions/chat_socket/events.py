"""The API Gateway WebSocket proxy events the function receives (`POST /events`: the Lambda Web
Adapter passes non-HTTP events through; the local gateway sends the same shapes), and the
frames a client sends in them.

Only the fields the function reads are declared; AWS sends more (`extendedRequestId`,
`identity`, `messageId`...), which are kept but not checked.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.platform.errors import ValidationError
from shared.platform.runtime.inputs import check_storable, json_body


class SocketContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    routeKey: str  # $connect, $default, $disconnect (or a key of RouteSelectionExpression)
    eventType: Literal["CONNECT", "MESSAGE", "DISCONNECT"]
    connectionId: str = Field(min_length=1, max_length=128)
    # Where the connection-management API of this socket is: https://{domainName}/{stage}.
    domainName: str = Field(min_length=1, max_length=255)
    stage: str = Field(min_length=1, max_length=128)
    requestId: str | None = None


class SocketEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    requestContext: SocketContext
    headers: dict[str, str] | None = None  # $connect and $disconnect only
    body: str | None = None  # $default: the frame
    isBase64Encoded: bool = False

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in (self.headers or {}).items() if k.lower() == wanted), None)

    def frame(self) -> dict[str, Any]:
        """The frame as a JSON object; a 400 (ValidationError) or 413 for anything else."""
        raw = (self.body or "").encode()
        if self.isBase64Encoded:
            try:
                raw = base64.b64decode(raw, validate=True)
            except binascii.Error:
                raise ValidationError("the frame is not valid base64") from None
        value = json_body(raw, "application/json") if raw.strip() else None
        if not isinstance(value, dict):
            raise ValidationError("a frame is a JSON object with a `type`")
        check_storable(value, where="frame")
        return value


class AuthFrame(BaseModel):
    """The API contract's first frame: `session` holds an access token (`token` is its older
    name) or a session id, which counts only with that session's cookie sent with the upgrade."""

    type: Literal["auth"]
    session: str | None = Field(default=None, max_length=8192)
    token: str | None = Field(default=None, max_length=8192)

    @property
    def credential(self) -> str | None:
        return self.session or self.token
