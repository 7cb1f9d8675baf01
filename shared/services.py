"""What a function works with: the platform's clients plus the domain services made from them
(the LLM backend, the tools registry with its Redis breaker, the retriever, the generation
defaults). One place, so a tool run through `POST /v1/tools/run` meets the same backend and caps
as inside a chat turn, and ingestion embeds with the same encoder as retrieval.

Each process's entry point builds one `Services` and passes it to every handler keyword-only
(`services=`); tests build their own, from settings of their choosing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from shared.domain.chat import sources
from shared.domain.chat.memory import MemoryStore
from shared.domain.chat.service import ChatService
from shared.domain.chat.turn import ChatKernel
from shared.domain.llm.backend import GenerationParams, LLMBackend
from shared.domain.llm.factory import create_backend
from shared.domain.preferences.checks import ContentCheck, RuleContentCheck
from shared.domain.rag.retrieval import Embed, Retriever
from shared.domain.tools.breaker import ToolBreaker
from shared.domain.tools.catalog import BUILTINS
from shared.domain.tools.registry import ToolRegistry
from shared.domain.voice.engine_client import VoiceEngine
from shared.domain.voice.service import VoiceService
from shared.platform.clients import Clients
from shared.platform.idempotency import IdempotencyStore
from shared.platform.limits.caps import ConcurrencyCaps, caps
from shared.platform.settings import Settings
from shared.platform.template import Template


@dataclass(kw_only=True)
class Services(Clients):
    @classmethod
    def from_settings(cls, settings: Settings, *, template: Template | None = None) -> Services:
        return cls(**cls.fields_from(settings, template=template))

    @functools.cached_property
    def llm(self) -> LLMBackend:
        """The configured backend (the inference service, or a remote provider)."""
        return create_backend(self.settings)

    @functools.cached_property
    def tools(self) -> ToolRegistry:
        return ToolRegistry(pool=self.db, breaker=ToolBreaker(self.redis), implementations=BUILTINS)

    @property
    def generation(self) -> GenerationParams:
        return GenerationParams(temperature=self.settings.chat_temperature,
                                max_tokens=self.settings.chat_max_tokens)  # fmt: skip

    def embedder(self) -> Embed:
        """Question embeddings through the Redis cache the chat's router fills."""
        redis, llm = self.redis, self.llm
        return lambda text: sources.embedding(redis, llm, text)

    @functools.cached_property
    def content_check(self) -> ContentCheck:
        """The training filter feedback passes (`shared.domain.preferences.checks`); assign
        another `ContentCheck` here to plug one in."""
        return RuleContentCheck()

    @functools.cached_property
    def voice(self) -> VoiceService:
        """Recordings and speech through the voice service (its URL and token in settings)."""
        settings = self.settings
        return VoiceService(
            pool=self.db, s3=self.s3, bucket=self.bucket(), engine=VoiceEngine(settings),
            max_upload_bytes=settings.voice_max_upload_bytes,
            max_speak_chars=settings.voice_max_speak_chars,
            default_voice=settings.voice_default_voice,
        )  # fmt: skip

    @functools.cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.db, self.embedder())

    def rag_extras(self) -> dict[str, Any]:
        """What the built-in tools read from a tool context: the retriever (the same encoder
        as the chunks) and the evidence settings for `rag.answer_with_context_v1`, the voice
        service for `voice.transcribe_v1` and `voice.speak_v1`."""
        settings = self.settings
        return {
            "retriever": self.retriever,
            "rag": {"top_k": settings.rag_top_k, "min_similarity": settings.rag_min_similarity},
            "voice": self.voice,
        }

    @functools.cached_property
    def chat(self) -> ChatService:
        """The chat kernel and the runner of this process's turns (one per process: the
        runner keeps its running turns)."""
        settings = self.settings
        kernel = ChatKernel(
            pool=self.db, redis=self.redis, backend=self.llm, tools=self.tools,
            memory_store=MemoryStore(pool=self.db, redis=self.redis,
                                     max_turns=settings.chat_memory_turns),
            backend_name=settings.llm_backend, generation=self.generation,
            system_prompt=settings.chat_system_prompt, tool_extras=self.rag_extras(),
            min_tokens_per_s=settings.chat_min_tokens_per_s,
        )  # fmt: skip
        return ChatService(
            kernel=kernel, redis=self.redis, caps=ConcurrencyCaps(self.redis, caps(settings)),
            idempotency=IdempotencyStore(self.redis),
        )  # fmt: skip

    async def aclose(self) -> None:
        if "llm" in self.__dict__:
            await self.llm.aclose()
        if "voice" in self.__dict__:
            await self.voice.engine.aclose()
        await super().aclose()


def lambda_app() -> Any:
    """`uvicorn --factory shared.services:lambda_app` behind the Lambda Web Adapter (run.sh):
    the one place a Lambda process builds its services, for the function FUNCTION_MODULE names."""
    from shared.platform.logs import configure_logging
    from shared.platform.runtime.asgi import function_app
    from shared.platform.settings import get_settings

    settings = get_settings()
    configure_logging(level=settings.log_level, service=settings.service_name)
    if not settings.function_module:
        raise RuntimeError("FUNCTION_MODULE must name the function's main module")
    return function_app(settings.function_module, Services.from_settings(settings))
