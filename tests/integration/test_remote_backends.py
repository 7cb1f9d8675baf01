"""RemoteOpenAIBackend against a real HTTP server that fakes an OpenAI-compatible provider.

The fake records every request it receives, so the tests check what a provider would really
see: model, adapter fields and gates, the injected system prompt, the bearer key. It needs
no local stack (no Postgres, Redis or S3).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shared.domain.llm.backend import AdapterUse, GenerationParams, Message, Usage
from shared.domain.llm.remote import RemoteOpenAIBackend
from shared.platform.errors import RateLimited, Unavailable, ValidationError
from shared.platform.settings import Settings
from tests.helpers import free_port, wait_for

API_KEY = "sk-test-remote-key"
QUESTION = [Message("user", "Tell me about LoRA")]
GREEDY = GenerationParams(temperature=0.0, max_tokens=32, top_k=5)


@dataclass
class FakeProvider:
    """Chat completions (blocking and SSE) and embeddings in OpenAI's shapes."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    # Answers to give before the normal one: (status, headers, error message).
    failures: list[tuple[int, dict[str, str], str]] = field(default_factory=list)

    def reset(self) -> None:
        self.received.clear()
        self.failures.clear()

    def fail_next(self, status: int, *, times: int = 1, headers: dict[str, str] | None = None):
        self.failures.extend([(status, headers or {}, f"fake failure {status}")] * times)

    async def _record(self, request: Request) -> dict[str, Any]:
        body = json.loads(await request.body())
        self.received.append({"path": request.url.path, "headers": dict(request.headers), **body})
        return body

    def _failure(self) -> Response | None:
        if not self.failures:
            return None
        status, headers, message = self.failures.pop(0)
        error = {"error": {"message": message, "type": "fake_error"}}
        return JSONResponse(error, status_code=status, headers=headers)

    async def chat(self, request: Request) -> Response:
        body = await self._record(request)
        if failure := self._failure():
            return failure
        words = f"{body['model']} says: {body['messages'][-1]['content']}".split(" ")
        pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
        usage = {"prompt_tokens": 11, "completion_tokens": len(pieces), "total_tokens": 0}
        base = {"id": "chatcmpl-fake", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": "".join(pieces)}}
            return JSONResponse(
                {
                    **base,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [{**choice, "finish_reason": "stop"}],
                }
            )

        async def events() -> AsyncIterator[str]:
            def chunk(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
                choice = {"index": 0, "delta": delta, "finish_reason": reason}
                return {**base, "object": "chat.completion.chunk", "choices": [choice]}

            yield f"data: {json.dumps(chunk({'role': 'assistant', 'content': ''}, None))}\n\n"
            for piece in pieces:
                yield f"data: {json.dumps(chunk({'content': piece}, None))}\n\n"
            yield f"data: {json.dumps(chunk({}, 'stop'))}\n\n"
            if (body.get("stream_options") or {}).get("include_usage"):
                # OpenAI's usage chunk comes last, with no choices.
                yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def embeddings(self, request: Request) -> Response:
        body = await self._record(request)
        if failure := self._failure():
            return failure
        rows = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), float(i)]}
            for i, text in enumerate(body["input"])
        ]
        # Out of order on purpose: the client must sort by index.
        return JSONResponse({"object": "list", "data": rows[::-1], "model": body["model"]})


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", fake.chat, methods=["POST"]),
            Route("/v1/embeddings", fake.embeddings, methods=["POST"]),
        ]
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout_s=10, interval_s=0.05, what="fake provider up")
    fake.url = f"http://127.0.0.1:{port}/v1"
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


def _backend(fake: FakeProvider, provider: str, **overrides: Any) -> RemoteOpenAIBackend:
    values: dict[str, Any] = {
        "llm_backend": provider,
        "llm_base_url": fake.url,
        "llm_api_key": API_KEY,
        "llm_model": "base-model",
        "llm_embedding_model": "embed-small",
        **overrides,
    }
    return RemoteOpenAIBackend(Settings(_env_file=None, **values))


async def test_model_id_provider_sends_the_strongest_fine_tune_and_the_prompt(fake) -> None:
    backend = _backend(fake, "openai")
    adapters = [
        AdapterUse("a-weak", 0.3, "remote", remote_model_id="ft:gpt-4o-mini:org:weak"),
        AdapterUse("a-strong", 0.8, "remote", remote_model_id="ft:gpt-4o-mini:org:strong"),
        AdapterUse("a-style", 0.5, "prompt", prompt_instructions="Answer in one line."),
        AdapterUse("a-local", 0.9, "local"),
    ]
    completion = await backend.complete(QUESTION, GREEDY, request_id="req-1", adapters=adapters)
    await backend.aclose()

    (sent,) = fake.received
    assert sent["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert sent["headers"]["x-request-id"] == "req-1"
    assert sent["model"] == "ft:gpt-4o-mini:org:strong"
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "Tell me about LoRA"},
    ]
    # OpenAI refuses unknown fields: no adapter fields, no top_k, no local extensions.
    assert not {"adapter_id", "adapters", "top_k", "max_decode_ms"} & sent.keys()
    assert completion.text == "ft:gpt-4o-mini:org:strong says: Tell me about LoRA"
    assert completion.usage == Usage(11, 6) and completion.request_id == "req-1"
    assert [(a.id, a.how) for a in completion.adapters] == [
        ("a-strong", "model_id"),
        ("a-style", "prompt"),
    ]
    drops = [(t["id"], t["reason"]) for t in completion.trace if t["event"] == "adapter_dropped"]
    assert drops == [("a-local", "mode_incompatible"), ("a-weak", "max_adapters")]


async def test_adapter_param_provider_streams_with_merged_adapters(fake) -> None:
    backend = _backend(fake, "lorax")
    adapters = [
        AdapterUse(
            "code",
            0.9,
            "hybrid",
            remote_adapter_id="user-1/code-lora",
            prompt_instructions="You are a coding assistant.",
        ),
        AdapterUse("tone", 0.4, "remote", remote_adapter_id="user-1/tone-lora"),
        AdapterUse("ft-only", 0.7, "remote", remote_model_id="ft:not-for-lorax"),
    ]
    deltas = [d async for d in backend.stream(QUESTION, GREEDY, adapters=adapters)]
    blocking = await backend.complete(QUESTION, GREEDY, adapters=adapters)
    await backend.aclose()

    streamed, plain = fake.received
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}
    for sent in (streamed, plain):
        assert sent["model"] == "base-model" and sent["top_k"] == 5
        assert sent["merged_adapters"] == {
            "ids": ["user-1/code-lora", "user-1/tone-lora"],
            "weights": [0.9, 0.4],
            "merge_strategy": "linear",
        }
        assert sent["messages"][0] == {"role": "system", "content": "You are a coding assistant."}
    assert "".join(d.text for d in deltas) == blocking.text
    assert all(d.finish_reason is None for d in deltas[:-1])
    final = deltas[-1]
    assert final.finish_reason == "stop" and final.usage == blocking.usage == Usage(11, 6)
    assert final.adapters == blocking.adapters and final.trace == blocking.trace
    assert [(a.id, a.weight, a.how) for a in final.adapters] == [
        ("code", 0.9, "adapter_param"),
        ("code", 1.0, "prompt"),
        ("tone", 0.4, "adapter_param"),
    ]
    assert {
        "event": "adapter_dropped",
        "id": "ft-only",
        "weight": 0.7,
        "reason": "no_remote_id",
    } in final.trace


async def test_generic_adapter_param_provider_gets_ids_and_gates(fake) -> None:
    backend = _backend(fake, "together")
    adapters = [
        AdapterUse(f"a{i}", w, "remote", remote_adapter_id=f"org/a{i}")
        for i, w in enumerate([0.2, 0.9, 0.5, 0.6])
    ]
    completion = await backend.complete(QUESTION, GREEDY, adapters=adapters)
    await backend.aclose()
    (sent,) = fake.received
    assert sent["adapter_id"] == "org/a1"
    assert sent["adapter_ids"] == ["org/a1", "org/a3", "org/a2"]
    assert sent["adapter_weights"] == [0.9, 0.6, 0.5]
    assert sent["messages"] == [{"role": "user", "content": "Tell me about LoRA"}]
    assert completion.trace == (
        {"event": "adapter_dropped", "id": "a0", "weight": 0.2, "reason": "max_adapters"},
    )


async def test_rate_limits_are_not_retried_and_carry_retry_after(fake) -> None:
    backend = _backend(fake, "openai")
    fake.fail_next(429, headers={"retry-after": "9"})
    with pytest.raises(RateLimited, match="fake failure 429") as limited:
        await backend.complete(QUESTION, GREEDY)
    assert limited.value.headers["Retry-After"] == "9" and len(fake.received) == 1
    await backend.aclose()


async def test_server_errors_are_retried_then_unavailable(fake) -> None:
    backend = _backend(fake, "openai")
    fake.fail_next(500, times=1)
    completion = await backend.complete(QUESTION, GREEDY)  # one 500, then an answer
    assert completion.text.startswith("base-model says") and len(fake.received) == 2

    fake.reset()
    fake.fail_next(500, times=3)
    with pytest.raises(Unavailable, match="answered 500"):
        await backend.complete(QUESTION, GREEDY)
    assert len(fake.received) == 3
    ids = {r["headers"]["x-request-id"] for r in fake.received}
    assert len(ids) == 1  # a retry is the same request

    # Three failures in a row so far: the fifth opens the circuit, and then none leaves.
    fake.reset()
    fake.fail_next(503, times=3)
    with pytest.raises(Unavailable, match="circuit open"):
        [d async for d in backend.stream(QUESTION, GREEDY)]
    assert len(fake.received) == 2
    await backend.aclose()

    fresh = _backend(fake, "openai")  # a stream is retried too, before any byte is read
    fake.reset()
    fake.fail_next(503, times=2)
    deltas = [d async for d in fresh.stream(QUESTION, GREEDY)]
    assert deltas[-1].finish_reason == "stop" and len(fake.received) == 3
    await fresh.aclose()


async def test_refusals_keep_the_provider_message_and_never_the_key(fake) -> None:
    backend = _backend(fake, "openai")
    fake.fail_next(400)
    with pytest.raises(ValidationError, match="fake failure 400"):
        await backend.complete(QUESTION, GREEDY)
    fake.fail_next(401)
    with pytest.raises(Unavailable, match="refused our credentials") as refused:
        await backend.complete(QUESTION, GREEDY)
    assert API_KEY not in str(refused.value)
    assert len(fake.received) == 2  # neither was retried
    await backend.aclose()


async def test_embeddings_and_cancel(fake) -> None:
    backend = _backend(fake, "openai")
    vectors = await backend.embed(["a", "abc"])
    assert vectors == [[1.0, 0.0], [3.0, 1.0]]
    (sent,) = fake.received
    assert sent["path"] == "/v1/embeddings" and sent["model"] == "embed-small"
    assert await backend.cancel("anything") is False
    await backend.aclose()

    no_embeddings = _backend(fake, "lorax", llm_embedding_model=None)
    with pytest.raises(Unavailable, match="LLM_EMBEDDING_MODEL"):
        await no_embeddings.embed(["a"])
    await no_embeddings.aclose()


async def test_an_unreachable_provider_is_unavailable(fake) -> None:
    settings = Settings(
        llm_backend="openai",
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1",
        llm_model="m",
        _env_file=None,
    )
    backend = RemoteOpenAIBackend(settings)
    with pytest.raises(Unavailable, match="unreachable"):
        await backend.complete(QUESTION, GREEDY)
    await backend.aclose()
