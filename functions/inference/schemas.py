"""OpenAI-compatible request and response models (the subset this service implements, plus
`top_k`, `max_decode_ms`, `adapters` and `copy_from` extensions)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from functions.inference.adapter_cache import AdapterRef
from shared.neural.lora import MAX_ADAPTERS_PER_REQUEST

BASE_MODEL_ID = "smollm2-135m-instruct"
EMBEDDING_MODEL_ID = "all-minilm-l6-v2"
# Tokens one request may bias (each costs a scatter on the host per generated token).
MAX_LOGIT_BIAS = 1024
# Copy-aware decoding: passages per request and characters over all of them (a context window's
# worth of sources and more; the index is built on the host once per request).
MAX_COPY_SOURCES = 64
MAX_COPY_CHARS = 200_000


class _Lenient(BaseModel):
    # Unknown OpenAI fields (logprobs, n=1, ...) are accepted and ignored.
    model_config = ConfigDict(extra="ignore")


class ChatMessageIn(_Lenient):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class StreamOptions(_Lenient):
    include_usage: bool = True


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{what} must be a UUID") from None


class AdapterIn(_Lenient):
    """One adapter of a request's set: its id, a gate weight, and a version (default: the
    adapter's current version, so a new version is served from the next request on)."""

    id: str
    weight: float = Field(default=1.0, ge=0, le=2)
    version: int | None = Field(default=None, ge=1)

    @field_validator("id")
    @classmethod
    def _an_adapter_id(cls, value: str) -> str:
        return _uuid(value, "adapter id")


class _Generation(_Lenient):
    # The base model's id, or an adapter's id (LoRAX's convention: that adapter, weight 1).
    model: str = BASE_MODEL_ID
    adapters: list[AdapterIn] = Field(default_factory=list, max_length=MAX_ADAPTERS_PER_REQUEST)
    # OpenAI's end-user field; a user id here limits adapters to those the user may use.
    user: str | None = None
    temperature: float = Field(default=0.7, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_decode_ms: int | None = Field(default=None, ge=1)
    # OpenAI's: token id (as a JSON object key) → bias in [-100, 100], added to its logit.
    logit_bias: dict[str, float] | None = Field(default=None, max_length=MAX_LOGIT_BIAS)

    @field_validator("logit_bias")
    @classmethod
    def _token_ids_and_biases(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.isdigit() or len(key) > 9:
                raise ValueError(f"logit_bias keys are token ids, not {key[:20]!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"logit_bias values are in [-100, 100], not {bias}")
        return value

    # Extension: passages the answer may quote (a grounded answer's sources). Names, numbers and
    # terms being copied from them continue exactly as there (shared.neural.copying).
    copy_from: list[str] | None = Field(default=None, max_length=MAX_COPY_SOURCES)

    @field_validator("copy_from")
    @classmethod
    def _bounded_sources(cls, value: list[str] | None) -> list[str] | None:
        if value and sum(len(text) for text in value) > MAX_COPY_CHARS:
            raise ValueError(f"copy_from holds at most {MAX_COPY_CHARS} characters in all")
        return value

    def biases(self) -> tuple[tuple[int, float], ...]:
        return tuple(sorted((int(k), float(v)) for k, v in (self.logit_bias or {}).items()))

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (len(value) > 4 or any(not s for s in value)):
            raise ValueError("stop takes up to 4 non-empty strings")
        return value

    @field_validator("user")
    @classmethod
    def _a_user_id(cls, value: str | None) -> str | None:
        return None if value is None else _uuid(value, "user")

    @model_validator(mode="after")
    def _one_adapter_set(self) -> _Generation:
        ids = [a.id for a in self.adapters] + ([self.model] if self.model_is_adapter else [])
        if len(ids) > MAX_ADAPTERS_PER_REQUEST:
            raise ValueError(f"at most {MAX_ADAPTERS_PER_REQUEST} adapters per request")
        if len(set(ids)) != len(ids):
            raise ValueError("an adapter is named twice")
        return self

    @property
    def model_is_adapter(self) -> bool:
        try:
            uuid.UUID(self.model)
        except ValueError:
            return False
        return True

    def adapter_refs(self) -> list[AdapterRef]:
        refs = [AdapterRef(str(uuid.UUID(self.model)))] if self.model_is_adapter else []
        return refs + [AdapterRef(a.id, a.weight, a.version) for a in self.adapters]

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def token_budget(self) -> int:
        return self.max_completion_tokens or self.max_tokens or 256


class ChatCompletionRequest(_Generation):
    messages: list[ChatMessageIn] = Field(min_length=1)


class CompletionRequest(_Generation):
    prompt: str = Field(min_length=1)


class EmbeddingRequest(_Lenient):
    model: str = EMBEDDING_MODEL_ID
    input: str | list[str]
    # The openai client asks for base64 (little-endian float32) by default.
    encoding_format: Literal["float", "base64"] = "float"

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class CancelRequest(_Lenient):
    request_id: str = Field(min_length=1, max_length=128)


class TokenizeRequest(_Lenient):
    """vLLM's `/tokenize`: a `prompt` or chat `messages` (counted with the chat template, as
    the model will see them), plus `prompts`, several texts counted in one call."""

    model: str = BASE_MODEL_ID
    prompt: str | None = Field(default=None, max_length=1_000_000)
    prompts: list[str] | None = Field(default=None, max_length=256)
    messages: list[ChatMessageIn] | None = Field(default=None, max_length=1024)
    return_tokens: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> TokenizeRequest:
        given = [x for x in (self.prompt, self.prompts, self.messages) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of prompt, prompts, messages")
        return self


class LoadAdapterRequest(_Lenient):
    id: str
    version: int | None = Field(default=None, ge=1)
    pin_s: float = Field(default=0.0, ge=0, le=86_400)

    @field_validator("id")
    @classmethod
    def _an_adapter_id(cls, value: str) -> str:
        return _uuid(value, "adapter id")
