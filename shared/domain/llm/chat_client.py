"""What the local and the remote backends share: one chat completion (blocking or streamed)
over an OpenAI-compatible route, with the router's adapters planned for the backend's
capabilities. Subclasses say where to send it, how to shape the body, and how to read back
what was applied."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from shared.domain.llm.adapter_plan import AdapterPlan, plan_adapters
from shared.domain.llm.backend import AdapterUse, Completion, Delta, GenerationParams, Message
from shared.domain.llm.openai_wire import AppliedReader, completion_from, read_deltas
from shared.domain.llm.providers import ProviderCapabilities
from shared.platform.resilient_http import ResilientClient


class ChatClient:
    _client: ResilientClient
    _caps: ProviderCapabilities
    _chat_path: str

    def _body(self, plan: AdapterPlan, params: GenerationParams, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _applied(self, plan: AdapterPlan) -> AppliedReader:
        """By default, what the plan sent is what was applied (providers report nothing)."""
        return lambda _: plan.applied

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> Completion:
        rid = request_id or uuid.uuid4().hex
        plan = plan_adapters(self._caps, messages, adapters)
        # With the same request id a retry is the same request: safe to repeat.
        response = await self._client.send(
            "POST",
            self._chat_path,
            json=self._body(plan, params, False),
            headers={"x-request-id": rid},
        )
        return completion_from(
            response.json(), request_id=rid, applied=self._applied(plan), trace=plan.trace
        )

    async def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> AsyncIterator[Delta]:
        rid = request_id or uuid.uuid4().hex
        plan = plan_adapters(self._caps, messages, adapters)
        response = await self._client.open_stream(
            "POST",
            self._chat_path,
            json=self._body(plan, params, True),
            headers={"x-request-id": rid},
        )
        # Closing early (a client gone) must close the response too.
        deltas = read_deltas(
            response, service=self._caps.name, applied=self._applied(plan), trace=plan.trace
        )
        async with aclosing(deltas):
            async for delta in deltas:
                yield delta
