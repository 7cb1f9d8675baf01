"""Running a chat turn outside the request that started it, so a client that goes away
mid-stream still gets its answer stored, and so a cancel from any instance can
stop it: the cancel route sets a Redis key the running turn polls.

Events flow through an `asyncio.Queue` to whichever transport is attached (an SSE response,
or the frames of a WebSocket connection). Caps, the idempotency claim and the cancel
registration are released when the turn ends, whatever happens to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from shared.domain.chat.turn import ChatKernel, TurnRequest, TurnResult
from shared.platform.errors import AppError, NotFound
from shared.platform.idempotency import Claim, IdempotencyStore
from shared.platform.runtime.outages import as_known_failure

log = logging.getLogger("chat")
CANCEL_POLL_S = 0.1
ACTIVE_TTL_S = 900
_END = object()


def active_key(request_id: str) -> str:
    return f"chat:active:{request_id}"


def cancel_key(request_id: str) -> str:
    return f"chat:cancel:{request_id}"


async def request_cancel(redis: Any, user_id: str, request_id: str) -> None:
    """Flags a running turn of this user for cancellation (404 for anyone else's)."""
    owner = await redis.get(active_key(request_id))
    if owner is None or owner.decode() != user_id:
        raise NotFound("no running chat request with that id")
    await redis.set(cancel_key(request_id), "1", ex=ACTIVE_TTL_S)


@dataclass
class RunningTurn:
    request: TurnRequest
    turn: TurnResult
    events: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[TurnResult] | None = None

    async def emit(self, event: str, data: Any) -> None:
        await self.events.put((event, data))

    def result(self) -> asyncio.Future[TurnResult]:
        """The turn's result, shielded: a caller that stops waiting does not cancel the turn;
        it is stored all the same."""
        if self.task is None:
            raise RuntimeError("the turn has not been started")
        return asyncio.shield(self.task)

    async def stream(self) -> AsyncIterator[tuple[str, Any]]:
        """(event, data) pairs until the turn ends."""
        while True:
            item = await self.events.get()
            if item is _END:
                return
            yield item

    async def sse(self) -> AsyncIterator[bytes]:
        """`event: <name>` / `data: <json>` frames until the turn ends."""
        async for event, data in self.stream():
            payload = json.dumps(data, default=str)
            yield f"event: {event}\ndata: {payload}\n\n".encode()


class TurnRunner:
    """Owns the background tasks of this process's turns (a strong reference each, so none is
    garbage-collected while it runs)."""

    def __init__(self, *, kernel: ChatKernel, redis: Any, idempotency: IdempotencyStore):
        self.kernel, self.redis, self.idempotency = kernel, redis, idempotency
        self._tasks: set[asyncio.Task[TurnResult]] = set()

    async def start(
        self,
        running: RunningTurn,
        *,
        leases: contextlib.AsyncExitStack,
        claim: Claim | None,
        stream: bool,
    ) -> asyncio.Task[TurnResult]:
        await self.redis.set(
            active_key(running.request.request_id), running.request.user_id, ex=ACTIVE_TTL_S
        )
        task = asyncio.create_task(self._run(running, leases, claim, stream))
        running.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(
        self,
        running: RunningTurn,
        leases: contextlib.AsyncExitStack,
        claim: Claim | None,
        stream: bool,
    ) -> TurnResult:
        rid = running.request.request_id
        try:
            turn = await self._until_cancelled(running)
            if turn.cancelled:
                await running.emit(
                    "cancel_ack",
                    {"request_id": rid, "message_id": turn.message_id,
                     "partial_chars": len(turn.content)},
                )  # fmt: skip
            await running.emit("message_done", turn.done_payload())
            if claim is not None:
                answer = turn.blocking_payload()
                await self.idempotency.complete(claim, {"sse": answer} if stream else answer)
            return turn
        except Exception as exc:
            known = exc if isinstance(exc, AppError) else as_known_failure(exc)
            if known is not None:
                error = {"code": known.code, "message": known.message, "details": known.details}
            else:
                log.exception("chat turn failed", extra={"request_id": rid})
                error = {"code": "server_error", "message": "the turn failed"}
            await running.emit("error", {**error, "request_id": rid})
            if claim is not None:  # nothing was answered: the key may be used again
                await self.idempotency.release(claim)
            raise
        finally:
            await running.events.put(_END)
            await leases.aclose()
            await self.redis.delete(active_key(rid), cancel_key(rid))

    async def _until_cancelled(self, running: RunningTurn) -> TurnResult:
        request = running.request
        work = asyncio.create_task(self.kernel.run(request, running.turn, running.emit))
        watcher = asyncio.create_task(self._watch(request.request_id))
        try:
            await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if watcher.done() and not work.done():
                work.cancel()  # the turn stores what it has, marked cancelled
                with contextlib.suppress(AppError):
                    await self.kernel.backend.cancel(request.request_id)
            return await work
        finally:
            watcher.cancel()

    async def _watch(self, request_id: str) -> None:
        # The cancel may arrive at another instance: the flag is in Redis, so poll it (an
        # EXISTS every 100 ms per running turn is cheap next to a decode step).
        while not await self.redis.exists(cancel_key(request_id)):  # noqa: ASYNC110
            await asyncio.sleep(CANCEL_POLL_S)
