"""The backend the settings select: the local inference service, or a remote provider."""

from __future__ import annotations

import httpx

from shared.domain.llm.backend import LLMBackend
from shared.domain.llm.local import LocalInferenceBackend
from shared.domain.llm.remote import RemoteOpenAIBackend
from shared.platform.settings import Settings


def create_backend(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> LLMBackend:
    if settings.llm_backend == "local":
        return LocalInferenceBackend(settings, transport=transport)
    return RemoteOpenAIBackend(settings, provider=settings.llm_backend, transport=transport)
