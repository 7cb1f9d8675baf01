"""The inference client's failure handling, against a small fake transport (no service)."""

from __future__ import annotations

import json

import httpx
import pytest

from shared.domain.llm.backend import AdapterUse, AppliedAdapter, GenerationParams, Message, Usage
from shared.domain.llm.factory import create_backend
from shared.domain.llm.local import LocalInferenceBackend
from shared.domain.llm.remote import RemoteOpenAIBackend
from shared.platform.errors import RateLimited, Unavailable, ValidationError
from shared.platform.settings import Settings

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


ADAPTER_ID = "5f0c1a52-3b8e-4c1e-9d7a-0a1b2c3d4e5f"


async def test_adapters_are_sent_and_what_the_service_applied_is_read_back() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        applied = [{"id": ADAPTER_ID, "version": 4, "weight": 0.7}]
        if not body["stream"]:
            return httpx.Response(200, json={**OK, "adapters": applied})
        chunks = [
            {"choices": [{"delta": {"content": "h"}, "finish_reason": None}]},
            {"choices": [{"delta": {"content": "i"}, "finish_reason": None}]},
            {
                "choices": [{"delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                "adapters": applied,
            },
        ]
        sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    adapters = [
        AdapterUse(ADAPTER_ID, 0.7, "local"),
        AdapterUse("style", 0.5, "prompt", prompt_instructions="Answer like a pirate."),
        AdapterUse("ft", 0.9, "remote", remote_model_id="ft:x"),
    ]
    backend = _backend(handler)
    completion = await backend.complete(HELLO, GenerationParams(), adapters=adapters)
    deltas = [d async for d in backend.stream(HELLO, GenerationParams(), adapters=adapters)]

    for body in bodies:
        assert body["adapters"] == [{"id": ADAPTER_ID, "weight": 0.7, "version": None}]
        assert body["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    expected = (
        AppliedAdapter(ADAPTER_ID, 0.7, "lora", version=4),
        AppliedAdapter("style", 1.0, "prompt"),
    )
    trace = (
        {"event": "adapter_dropped", "id": "ft", "weight": 0.9, "reason": "mode_incompatible"},
        {"event": "prompt_injected", "id": "style"},
    )
    assert completion.adapters == expected and completion.trace == trace
    assert "".join(d.text for d in deltas) == "hi"
    final = deltas[-1]
    assert final.finish_reason == "stop" and final.usage == Usage(3, 2)
    assert final.adapters == expected and final.trace == trace
    assert all(d.adapters == () for d in deltas[:-1])


async def test_an_answer_without_adapters_means_none_were_applied() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "adapters" not in json.loads(request.content)  # old callers: unchanged body
        return httpx.Response(200, json=OK)

    completion = await _backend(handler).complete(HELLO, GenerationParams())
    assert completion.adapters == () and completion.trace == ()


def test_the_factory_follows_the_settings() -> None:
    local = create_backend(Settings(inference_url="http://inference.test", _env_file=None))
    assert isinstance(local, LocalInferenceBackend)
    remote = create_backend(
        Settings(
            llm_backend="lorax",
            llm_base_url="http://lorax.test/v1",
            llm_model="",
            _env_file=None,
        )
    )
    assert isinstance(remote, RemoteOpenAIBackend) and remote.provider == "lorax"
    with pytest.raises(Unavailable, match="LLM_BASE_URL"):
        create_backend(Settings(llm_backend="openai", llm_model="gpt-4o-mini", _env_file=None))


def test_a_remote_backend_needs_url_key_and_model_outside_dev() -> None:
    prod = {
        "env": "prod",
        "database_url": "postgresql://u:p@db/app",
        "pg_password": "s3cret-db",
        "aws_secret_access_key": "real-secret",
        "inference_token": "real-token",
        "auth_jwt_secret": "a-real-signing-key-of-32-bytes-or-more",
        "auth_encryption_key": "another-real-key-for-data-at-rest",
        "smtp_host": "smtp.example.com",
        "_env_file": None,
    }
    with pytest.raises(ValueError, match=r"LLM_BASE_URL.*LLM_API_KEY.*LLM_MODEL"):
        Settings(llm_backend="openai", **prod)
    settings = Settings(
        llm_backend="openai",
        llm_base_url="https://api.openai.com/v1",
        llm_api_key="sk-real-key-value",
        llm_model="gpt-4o-mini",
        **prod,
    )
    assert "sk-real-key-value" not in repr(settings)
