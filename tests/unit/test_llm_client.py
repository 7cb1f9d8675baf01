"""The inference client's failure handling, against a small fake transport (no service)."""

from __future__ import annotations

import httpx
import pytest

from shared.config import Settings
from shared.errors import RateLimited, Unavailable, ValidationError
from shared.llm.backend import GenerationParams, Message
from shared.llm.local import LocalInferenceBackend

OK = {
    "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}
HELLO = [Message("user", "hello")]


def _backend(handler) -> LocalInferenceBackend:
    settings = Settings(inference_url="http://inference.test", _env_file=None)
    return LocalInferenceBackend(settings, transport=httpx.MockTransport(handler))


async def test_transient_failures_are_retried_with_the_same_request_id() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["x-request-id"])
        if len(seen) < 3:
            return httpx.Response(503, json={"error": {"message": "loading"}})
        assert request.headers["authorization"] == "Bearer dev-inference-token"
        return httpx.Response(200, json=OK)

    completion = await _backend(handler).complete(HELLO, GenerationParams())
    assert completion.text == "hi" and len(seen) == 3 and len(set(seen)) == 1


async def test_busy_and_bad_requests_are_not_retried() -> None:
    calls = []

    def busy(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            429, headers={"retry-after": "7"}, json={"error": {"message": "full"}}
        )

    with pytest.raises(RateLimited) as limited:
        await _backend(busy).complete(HELLO, GenerationParams())
    assert limited.value.headers["Retry-After"] == "7" and len(calls) == 1

    def bad(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "temperature too high"}})

    with pytest.raises(ValidationError, match="temperature"):
        await _backend(bad).complete(HELLO, GenerationParams())


async def test_the_circuit_opens_after_repeated_failures_and_then_fails_fast() -> None:
    calls = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused")

    backend = _backend(down)
    for _ in range(2):  # 3 attempts each: past the threshold of 5
        with pytest.raises(Unavailable):
            await backend.complete(HELLO, GenerationParams())
    made = len(calls)
    with pytest.raises(Unavailable, match="circuit open"):
        await backend.complete(HELLO, GenerationParams())
    assert len(calls) == made  # no request left the client
