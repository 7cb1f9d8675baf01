"""OpenAI-compatible request and response models (the subset this service implements, plus
`top_k` and `max_decode_ms` extensions)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

BASE_MODEL_ID = "smollm2-135m-instruct"
EMBEDDING_MODEL_ID = "all-minilm-l6-v2"


class _Lenient(BaseModel):
    # Unknown OpenAI fields (logprobs, n=1, user, ...) are accepted and ignored.
    model_config = ConfigDict(extra="ignore")


class ChatMessageIn(_Lenient):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class StreamOptions(_Lenient):
    include_usage: bool = True


class _Generation(_Lenient):
    model: str = BASE_MODEL_ID
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

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (len(value) > 4 or any(not s for s in value)):
            raise ValueError("stop takes up to 4 non-empty strings")
        return value

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
