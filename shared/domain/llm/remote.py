"""An OpenAI-compatible provider as an `LLMBackend`: OpenAI, Azure, Vertex and
Bedrock fine-tunes by model id; Together, LoRAX and adapter servers by adapter id.

Adapters are formatted per the provider's capabilities (`shared.domain.llm.providers`); what the
provider really received is reported in `Completion.adapters` and `.trace`. Remote providers
cannot enforce `max_decode_ms` (the request timeout bounds a call) and cannot cancel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from shared.domain.llm.adapter_plan import AdapterPlan
from shared.domain.llm.backend import GenerationParams, Message, TokenCount
from shared.domain.llm.chat_client import ChatClient
from shared.domain.llm.openai_wire import embeddings_from, message_dicts
from shared.domain.llm.providers import capabilities
from shared.platform.errors import Unavailable
from shared.platform.resilient_http import ResilientClient
from shared.platform.settings import Settings


class RemoteOpenAIBackend(ChatClient):
    _chat_path = "/chat/completions"

    def __init__(
        self,
        settings: Settings,
        *,
        provider: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self._caps = capabilities(provider or settings.llm_backend)
        if self._caps.is_local:
            raise ValueError(f"{self._caps.name} is not a remote provider")
        if not settings.llm_base_url:
            raise Unavailable(f"LLM_BASE_URL is not set for provider {self._caps.name}")
        if settings.llm_model is None:
            raise Unavailable(f"LLM_MODEL is not set for provider {self._caps.name}")
        self._model = settings.llm_model
        self._context_window = settings.llm_context_window
        self._embedding_model = settings.llm_embedding_model
        key = settings.llm_api_key.get_secret_value()
        self._client = ResilientClient(
            service=self._caps.name,
            base_url=settings.llm_base_url,
            # Self-hosted adapter servers often run without a key; send none rather than "".
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout_s=settings.llm_timeout_s,
            connect_timeout_s=settings.dependency_timeout_s,
            transport=transport,
        )

    @property
    def provider(self) -> str:
        return self._caps.name

    def _body(self, plan: AdapterPlan, params: GenerationParams, stream: bool) -> dict[str, Any]:
        # `max_tokens` rather than `max_completion_tokens`: every compatible server takes it.
        body: dict[str, Any] = {
            "model": self._model,
            "messages": message_dicts(plan.messages),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stream": stream,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.top_k and self._caps.accepts_top_k:
            body["top_k"] = params.top_k
        if stream:
            body["stream_options"] = {"include_usage": True}
        body.update(plan.body)  # a fine-tune's `model`, or the adapter fields
        return body

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self._embedding_model:
            raise Unavailable(
                f"{self._caps.name} has no embedding model configured (set LLM_EMBEDDING_MODEL)"
            )
        response = await self._client.send(
            "POST",
            "/embeddings",
            json={"model": self._embedding_model, "input": list(texts), "encoding_format": "float"},
        )
        return embeddings_from(response.json())

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount:
        """OpenAI-compatible APIs have no tokenize route: an estimate (about 4 characters a
        token for English, plus a few per message for the template), marked as one."""
        chars = sum(len(m.content) + 16 for m in messages)
        return TokenCount(count=chars // 4 + 1, context_window=self._context_window, exact=False)

    async def cancel(self, request_id: str) -> bool:
        """Providers offer no cancel; closing the stream is the only way to stop one."""
        return False
