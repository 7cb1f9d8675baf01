"""How the chat and tools functions build what a turn needs from settings: the LLM backend,
the tools registry with its Redis breaker, the generation defaults, the retriever. One place,
so a tool run through `POST /v1/tools/run` meets the same backend and caps as inside a chat
turn, and ingestion embeds with the same encoder as retrieval.

`model_settings` is the one seam tests patch to point both functions at their inference
service; `reset` drops the backend built from the previous settings.
"""

from __future__ import annotations

import functools
from typing import Any

from shared.chat import sources
from shared.config import Settings
from shared.deps import get_deps
from shared.llm.backend import GenerationParams, LLMBackend
from shared.llm.factory import create_backend
from shared.rag.retrieval import Embed, Retriever
from shared.tools.breaker import ToolBreaker
from shared.tools.catalog import BUILTINS
from shared.tools.registry import ToolRegistry


def model_settings() -> Settings:
    return get_deps().settings


@functools.lru_cache(maxsize=1)
def backend() -> LLMBackend:
    return create_backend(model_settings())


def registry(pool: Any) -> ToolRegistry:
    breaker = ToolBreaker(get_deps().redis)
    return ToolRegistry(pool=pool, breaker=breaker, implementations=BUILTINS)


def generation(settings: Settings) -> GenerationParams:
    return GenerationParams(temperature=settings.chat_temperature,
                            max_tokens=settings.chat_max_tokens)  # fmt: skip


def rag_extras(settings: Settings, pool: Any, llm: LLMBackend) -> dict[str, Any]:
    """What `rag.answer_with_context_v1` reads from a tool context: the retriever (the same
    encoder as the chunks) and the evidence settings."""
    return {
        "retriever": Retriever(pool, embedder(llm)),
        "rag": {"top_k": settings.rag_top_k, "min_similarity": settings.rag_min_similarity},
    }


def embedder(llm: LLMBackend) -> Embed:
    """Question embeddings through the Redis cache the chat's router fills."""
    redis = get_deps().redis
    return lambda text: sources.embedding(redis, llm, text)


def reset() -> None:
    """Forgets the backend built from the previous settings; what functions cache per backend
    (the chat's kernel) is rebuilt with it."""
    backend.cache_clear()
