"""Chat function (DESIGN.md §4 flow 1, §5): `POST /v1/chat`, blocking JSON or an SSE stream of
`trace`, `token`, `message_done`, `error`, `cancel_ack` events; `POST /v1/chat/cancel`. The
turn itself is the chat service's (shared.domain.chat.service), shared with the WebSocket
function."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from functions.chat.schemas import CancelIn, ChatIn, ChatOut
from shared.domain.chat.service import Replayed
from shared.domain.chat.turn import TurnRequest
from shared.platform.auth.perimeter import perimeter
from shared.platform.context import current_request_id
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def turn_request(user_id: str, body: ChatIn) -> TurnRequest:
    return TurnRequest(
        user_id=user_id, request_id=current_request_id() or "", content=body.message.content,
        conversation_id=body.conversation_id, parent_id=body.parent_id,
        regenerate=body.regenerate, edit_of=body.edit_of, context_ids=tuple(body.all_context_ids()),
        workflow_id=body.workflow_id, clip_id=body.message.clip_id,
    )  # fmt: skip


def _replay(payload: dict[str, Any], stream: bool) -> Response | dict[str, Any]:
    if not stream:
        return payload

    async def events() -> AsyncIterator[bytes]:
        done = {k: v for k, v in payload.items() if k != "content"}
        yield f"event: token\ndata: {json.dumps(payload.get('content', ''))}\n\n".encode()
        yield f"event: message_done\ndata: {json.dumps({**done, 'replayed': True})}\n\n".encode()

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


async def chat(call: Call[ChatIn], *, services: Services) -> Any:
    body = call.body
    started = await services.chat.begin(
        turn_request(call.user.user_id, body),
        key=call.request.headers.get("idempotency-key") or body.client_request_id,
        fingerprint=body.model_dump(mode="json", exclude={"client_request_id"}),
        stream=body.stream,
    )
    if isinstance(started, Replayed):
        return _replay(started.answer, body.stream)
    if body.stream:
        return StreamingResponse(started.sse(), media_type="text/event-stream", headers=SSE_HEADERS)
    result = await started.result()  # a caller that hangs up does not cancel the turn
    return ChatOut(**result.blocking_payload())


async def cancel(call: Call[CancelIn], *, services: Services) -> dict[str, Any]:
    await services.chat.cancel(call.user.user_id, call.body.request_id)
    return {"request_id": call.body.request_id, "cancelling": True}


ROUTES = RouteTable(
    "chat",
    [
        Route("POST", "/v1/chat", chat, "One chat turn: blocking JSON, or SSE with stream: true",
              access=Access.USER, request_model=ChatIn, response_model=None, streaming=True,
              rate_limit="chat"),
        Route("POST", "/v1/chat/cancel", cancel, "Stop a running turn (its partial answer is kept)",
              access=Access.USER, request_model=CancelIn),
    ],
    **perimeter(),
)  # fmt: skip
