"""Chat function (DESIGN.md §4 flow 1, §5): `POST /v1/chat`, blocking JSON or an SSE stream of
`trace`, `token`, `message_done`, `error`, `cancel_ack` events; `POST /v1/chat/cancel`.
The gateway's WebSocket relay calls the same streaming route."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from functions.chat.runner import RunningTurn, TurnRunner, request_cancel
from functions.chat.schemas import CancelIn, ChatIn, ChatOut
from shared.auth.perimeter import perimeter
from shared.chat import wiring
from shared.chat.memory import MemoryStore
from shared.chat.turn import ChatKernel, TurnRequest
from shared.deps import get_deps
from shared.idempotency import IdempotencyStore
from shared.limits.caps import ConcurrencyCaps, caps
from shared.llm.backend import LLMBackend
from shared.runtime.context import current_request_id
from shared.runtime.routes import Access, Call, Route, RouteTable

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _build_runner(pool: Any, backend: LLMBackend) -> TurnRunner:
    deps, settings = get_deps(), wiring.model_settings()
    kernel = ChatKernel(
        pool=pool, redis=deps.redis, backend=backend, tools=wiring.registry(pool),
        memory_store=MemoryStore(pool=pool, redis=deps.redis, max_turns=settings.chat_memory_turns),
        backend_name=settings.llm_backend, generation=wiring.generation(settings),
        system_prompt=settings.chat_system_prompt,
        tool_extras=wiring.rag_extras(settings, pool, backend),
        min_tokens_per_s=settings.chat_min_tokens_per_s,
    )  # fmt: skip
    return TurnRunner(kernel=kernel, redis=deps.redis, idempotency=IdempotencyStore(deps.redis))


_built: list[TurnRunner] = []  # at most one: the kernel of the current pool and backend


async def runner() -> TurnRunner:
    """The kernel, rebuilt when the pool or the backend (new settings) is a new one."""
    pool, backend = await get_deps().db.get(), wiring.backend()
    if not _built or _built[0].kernel.pool is not pool or _built[0].kernel.backend is not backend:
        _built[:] = [_build_runner(pool, backend)]
    return _built[0]


def _replay(stored: dict[str, Any], stream: bool) -> Response | dict[str, Any]:
    payload = stored.get("sse", stored)  # a streamed turn's answer is kept under "sse"
    if not stream:
        return payload

    async def events() -> AsyncIterator[bytes]:
        done = {k: v for k, v in payload.items() if k != "content"}
        yield f"event: token\ndata: {json.dumps(payload.get('content', ''))}\n\n".encode()
        yield f"event: message_done\ndata: {json.dumps({**done, 'replayed': True})}\n\n".encode()

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


async def chat(call: Call[ChatIn]) -> Any:
    body = call.body
    user_id, deps, turns = call.user.user_id, get_deps(), await runner()
    key = call.request.headers.get("idempotency-key") or body.client_request_id
    claim = None
    if key:
        claim, stored = await turns.idempotency.claim(
            user_id, "chat", key, body.model_dump(mode="json", exclude={"client_request_id"})
        )
        if stored is not None:
            return _replay(stored, body.stream)
    request = TurnRequest(
        user_id=user_id, request_id=current_request_id() or "", content=body.message.content,
        conversation_id=body.conversation_id, parent_id=body.parent_id,
        regenerate=body.regenerate, context_ids=tuple(body.all_context_ids()),
        workflow_id=body.workflow_id,
    )  # fmt: skip
    leases = contextlib.AsyncExitStack()
    try:
        limits = ConcurrencyCaps(deps.redis, caps(deps.settings))
        await leases.enter_async_context(limits.hold("workflows", user_id))
        await leases.enter_async_context(limits.hold("decodes", user_id))
        turn = await turns.kernel.open(request)
    except BaseException:
        await leases.aclose()
        if claim is not None:
            await turns.idempotency.release(claim)
        raise
    running = RunningTurn(request, turn)
    task = await turns.start(running, leases=leases, claim=claim, stream=body.stream)
    if body.stream:
        return StreamingResponse(running.sse(), media_type="text/event-stream", headers=SSE_HEADERS)
    # Shielded: a caller that hangs up does not cancel the turn; it is stored all the same.
    result = await asyncio.shield(task)
    return ChatOut(**result.blocking_payload())


async def cancel(call: Call[CancelIn]) -> dict[str, Any]:
    await request_cancel(get_deps().redis, call.user.user_id, call.body.request_id)
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


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    return await ROUTES.dispatch(request)
