"""The one interface functions use for generation and embeddings (DESIGN.md §1, §5a)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


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


@dataclass(frozen=True)
class Delta:
    """A streamed piece; the last one has `finish_reason` and `usage` set."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


class LLMBackend(Protocol):
    async def complete(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
    ) -> AsyncIterator[Delta]: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def cancel(self, request_id: str) -> bool: ...
