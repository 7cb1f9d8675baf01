"""Client of the local inference service (functions/inference): timeouts, retries with jitter
for calls that are safe to repeat, and a circuit breaker so a down service fails fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from shared.domain.llm.adapter_plan import AdapterPlan
from shared.domain.llm.backend import AppliedAdapter, GenerationParams, Message, TokenCount
from shared.domain.llm.chat_client import ChatClient
from shared.domain.llm.openai_wire import AppliedReader, embeddings_from, message_dicts
from shared.domain.llm.providers import PROVIDERS
from shared.platform.errors import Unavailable, ValidationError
from shared.platform.resilient_http import ResilientClient, provider_message
from shared.platform.settings import Settings

MODEL = "smollm2-135m-instruct"
EMBEDDING_MODEL = "all-minilm-l6-v2"
LOCAL_LORA = PROVIDERS["local_lora"]


def _local_body(plan: AdapterPlan, params: GenerationParams, stream: bool) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": message_dicts(plan.messages),
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "max_tokens": params.max_tokens,
        "stop": list(params.stop) or None,
        "seed": params.seed,
        "max_decode_ms": params.max_decode_ms,
        "copy_from": list(params.copy_from) or None,
        "stream": stream,
        **plan.body,  # `adapters: [{id, weight, version}]` when LoRA adapters were chosen
    }


def _applied_reader(plan: AdapterPlan) -> AppliedReader:
    """The LoRA adapters the service reports it applied, plus the prompt injections.

    The service says which adapters and versions it really used; an answer without the field
    (a service that predates adapters ignores the request field) applied none."""
    prompts = tuple(a for a in plan.applied if a.how == "prompt")

    def read(data: dict[str, Any]) -> tuple[AppliedAdapter, ...]:
        loras = tuple(
            AppliedAdapter(
                id=str(item["id"]),
                weight=float(item.get("weight", 1.0)),
                how="lora",
                version=item.get("version"),
            )
            for item in data.get("adapters") or []
        )
        return loras + prompts

    return read


class ModelRefused(ValidationError):
    """The inference service's own 4xx refusal, with its OpenAI-style `error.code`
    (`model_not_found`, `adapter_unusable`, ...), so a caller can tell a refused adapter
    (shared.domain.chat.adapter_fallback) from a refused request."""

    def __init__(self, message: str, *, service_code: str | None):
        super().__init__(message)
        self.service_code = service_code


def _refusal(response: httpx.Response) -> Exception:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    message = f"inference refused the request: {provider_message(response)}"
    return ModelRefused(message, service_code=code if isinstance(code, str) else None)


class LocalInferenceBackend(ChatClient):
    _caps, _chat_path = LOCAL_LORA, "/v1/chat/completions"

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None):
        if not settings.inference_url:
            raise Unavailable("INFERENCE_URL is not set")
        self._client = ResilientClient(
            service="inference",
            base_url=settings.inference_url,
            headers={"Authorization": f"Bearer {settings.inference_token.get_secret_value()}"},
            timeout_s=settings.inference_timeout_s,
            connect_timeout_s=settings.dependency_timeout_s,
            transport=transport,
            refusal=_refusal,
        )

    def _body(self, plan: AdapterPlan, params: GenerationParams, stream: bool) -> dict[str, Any]:
        return _local_body(plan, params, stream)

    def _applied(self, plan: AdapterPlan) -> AppliedReader:
        return _applied_reader(plan)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        response = await self._client.send(
            "POST", "/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": list(texts)}
        )
        return embeddings_from(response.json())

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount:
        """Counted by the service with the model's tokenizer and chat template."""
        response = await self._client.send(
            "POST", "/tokenize", json={"model": MODEL, "messages": message_dicts(messages)}
        )
        data = response.json()
        return TokenCount(count=int(data["count"]), context_window=int(data["max_model_len"]))

    async def cancel(self, request_id: str) -> bool:
        response = await self._client.send_once(
            "POST", "/v1/cancel", json={"request_id": request_id}
        )
        return bool(response.json()["cancelled"])
