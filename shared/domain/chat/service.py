"""Starting and stopping chat turns, whatever the transport (an HTTP request, blocking or
SSE, or a WebSocket frame): the idempotency claim, the per-user caps, opening the turn, and
handing it to the runner that finishes it in the background.

A repeated request (same idempotency key, same body) within 24 h gets the stored answer
instead of a second turn; a turn refused before it starts releases its claim and caps.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from shared.domain.chat.runner import RunningTurn, TurnRunner, request_cancel
from shared.domain.chat.turn import ChatKernel, TurnRequest
from shared.platform.idempotency import IdempotencyStore
from shared.platform.limits.caps import ConcurrencyCaps


@dataclass(frozen=True)
class Replayed:
    """The stored answer of an earlier request with this idempotency key (a streamed turn's
    answer is kept under "sse")."""

    answer: dict[str, Any]


class ChatService:
    def __init__(
        self, *, kernel: ChatKernel, redis: Any, caps: ConcurrencyCaps,
        idempotency: IdempotencyStore,
    ):  # fmt: skip
        self.kernel, self.redis, self.caps, self.idempotency = kernel, redis, caps, idempotency
        self.runner = TurnRunner(kernel=kernel, redis=redis, idempotency=idempotency)

    async def begin(
        self, request: TurnRequest, *, key: str | None, fingerprint: dict[str, Any], stream: bool
    ) -> RunningTurn | Replayed:
        """Opens the turn (its user message stored) and starts it; its events arrive on the
        returned turn's queue, its result on `task`. `fingerprint`: what a repeat of `key`
        must match."""
        claim = None
        if key:
            claim, stored = await self.idempotency.claim(request.user_id, "chat", key, fingerprint)
            if stored is not None:
                return Replayed(stored.get("sse", stored))
        leases = contextlib.AsyncExitStack()
        try:
            await leases.enter_async_context(self.caps.hold("workflows", request.user_id))
            await leases.enter_async_context(self.caps.hold("decodes", request.user_id))
            opened = await self.kernel.open(request)
        except BaseException:
            await leases.aclose()
            if claim is not None:
                await self.idempotency.release(claim)
            raise
        running = RunningTurn(request, opened)
        await self.runner.start(running, leases=leases, claim=claim, stream=stream)
        return running

    async def cancel(self, user_id: str, request_id: str) -> None:
        """Flags a running turn of this user, on any instance, for cancellation (404 for
        anyone else's)."""
        await request_cancel(self.redis, user_id, request_id)
