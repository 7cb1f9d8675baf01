"""What an authenticated socket may send: `ping` → `pong`; `chat_start` (a `POST /v1/chat`
body) runs a turn whose events go out as `{event, data, request_id}` frames while it runs;
`cancel` with a `request_id` stops one (on whichever instance runs it: the flag is in Redis).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from functions.chat.main import turn_request
from functions.chat.schemas import CancelIn, ChatIn
from functions.chat_socket.connections import Connections
from shared.domain.chat.service import Replayed
from shared.platform.auth.tokens import Principal
from shared.platform.context import reset_request_id, set_request_id
from shared.platform.errors import AppError, ValidationError
from shared.platform.limits.rate import RateLimiter, rules
from shared.services import Services


@dataclass(frozen=True)
class Socket:
    """One frame's context: who sent it, on which connection, and how to answer."""

    connection_id: str
    principal: Principal
    connections: Connections
    services: Services

    async def send(self, frame: dict[str, Any]) -> bool:
        return await self.connections.send(self.connection_id, frame)


def _model(model: type[pydantic.BaseModel], frame: dict[str, Any], **extra: Any) -> Any:
    body = {k: v for k, v in frame.items() if k != "type"} | extra
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                   for e in exc.errors(include_url=False, include_input=False)]  # fmt: skip
        raise ValidationError("the frame failed validation", details=details) from exc


def _error(exc: AppError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "details": exc.details}


async def ping(frame: dict[str, Any], socket: Socket) -> None:
    await socket.send({"type": "pong"})


async def chat_start(frame: dict[str, Any], socket: Socket) -> None:
    request_id = str(uuid.uuid4())  # the turn's id: what a `cancel` frame names
    token = set_request_id(request_id)
    try:
        await _run_turn(frame, socket, request_id)
    finally:
        reset_request_id(token)


async def _run_turn(frame: dict[str, Any], socket: Socket, request_id: str) -> None:
    services, user_id = socket.services, socket.principal.user_id

    async def out(event: str, data: Any) -> bool:
        return await socket.send({"event": event, "data": data, "request_id": request_id})

    try:
        body: ChatIn = _model(ChatIn, frame, stream=True)
        # The same budget as `POST /v1/chat`, per user.
        await RateLimiter(services.redis).enforce(rules(services.settings)["chat"], user_id)
        started = await services.chat.begin(
            turn_request(user_id, body), key=body.client_request_id,
            fingerprint=body.model_dump(mode="json", exclude={"client_request_id"}), stream=True,
        )  # fmt: skip
    except AppError as exc:
        await out("error", _error(exc))
        return
    if isinstance(started, Replayed):
        answer = started.answer
        await out("token", answer.get("content", ""))
        done = {k: v for k, v in answer.items() if k != "content"}
        await out("message_done", {**done, "replayed": True})
        return
    listening = True
    # Read to the end even when the client has gone: on Lambda the process is frozen once the
    # function answers, which would stop the turn before its answer is stored.
    async for event, data in started.stream():
        if listening:
            listening = await out(event, data)


async def cancel(frame: dict[str, Any], socket: Socket) -> None:
    request_id = str(frame.get("request_id") or "")
    try:
        body: CancelIn = _model(CancelIn, frame)
        await socket.services.chat.cancel(socket.principal.user_id, body.request_id)
    except AppError as exc:  # the turn's own frames acknowledge a cancel that worked
        await socket.send({"event": "error", "data": _error(exc), "request_id": request_id})


# What each frame `type` runs (a fixed table, read only).
FRAMES: Mapping[str, Callable[[dict[str, Any], Socket], Awaitable[None]]] = {
    "ping": ping,
    "chat_start": chat_start,
    "cancel": cancel,
}
