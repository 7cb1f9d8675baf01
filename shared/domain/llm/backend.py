"""The one interface functions use for generation and embeddings (DESIGN.md §1, §5a)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# How an adapter artifact may run: LoRA weights on our inference service, a
# provider's fine-tune, system-prompt instructions only, or weights with a prompt fallback.
AdapterMode = Literal["local", "remote", "prompt", "hybrid"]
# How an adapter was actually applied to one request.
AppliedHow = Literal["lora", "model_id", "adapter_param", "prompt"]


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    max_decode_ms: int | None = None
    # Passages the answer quotes (a grounded answer's sources): the local inference service
    # decodes copy-aware over them (its `copy_from` extension); remote providers ignore it.
    copy_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdapterUse:
    """One adapter the router chose for a request, with its gate `weight`."""

    id: str
    weight: float = 1.0
    mode: AdapterMode = "local"
    version: int | None = None
    remote_model_id: str | None = None
    remote_adapter_id: str | None = None
    prompt_instructions: str | None = None
    # Instructions newer than the adapter's weights: injected even when the weights apply.
    pending_instructions: str | None = None


@dataclass(frozen=True)
class AppliedAdapter:
    """An adapter that shaped the answer; `weight` is the gate that really took effect (1.0
    where the provider cannot weigh adapters), `version` the LoRA version the service used."""

    id: str
    weight: float
    how: AppliedHow
    version: int | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage
    truncated: bool = False
    request_id: str | None = None
    adapters: tuple[AppliedAdapter, ...] = ()
    # Adapter decisions worth showing in the router trace: drops (with a reason) and injections.
    trace: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Delta:
    """A streamed piece; the last one has `finish_reason`, `usage`, `adapters` and `trace` set."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    adapters: tuple[AppliedAdapter, ...] = ()
    trace: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class TokenCount:
    """Prompt tokens of a message list as the model sees it, and the model's context window.
    `exact` is False where the provider offers no tokenizer and the count is an estimate."""

    count: int
    context_window: int
    exact: bool = True


class LLMBackend(Protocol):
    async def complete(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> AsyncIterator[Delta]: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount: ...

    async def cancel(self, request_id: str) -> bool: ...

    async def aclose(self) -> None: ...
