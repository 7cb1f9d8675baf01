"""LocalInferenceBackend against the real inference service."""

from __future__ import annotations

import numpy as np

from shared.domain.llm.backend import AdapterUse, GenerationParams, Message
from shared.domain.llm.local import LocalInferenceBackend
from shared.platform.settings import Settings
from tests.integration.conftest import TOKEN

FRANCE = [Message("user", "What is the capital of France?")]


def _backend(url: str) -> LocalInferenceBackend:
    return LocalInferenceBackend(Settings(inference_url=url, inference_token=TOKEN, _env_file=None))


async def test_complete_stream_embed_and_cancel(service) -> None:
    backend = _backend(service)
    greedy = GenerationParams(temperature=0.0, max_tokens=24)
    completion = await backend.complete(FRANCE, greedy)
    assert completion.text == "The capital of France is Paris."
    assert completion.finish_reason == "stop" and completion.usage.completion_tokens == 7

    deltas = [d async for d in backend.stream(FRANCE, greedy)]
    assert "".join(d.text for d in deltas) == completion.text
    assert deltas[-1].finish_reason == "stop" and deltas[-1].usage is not None

    vectors = np.array(await backend.embed(["a cat sleeps", "a kitten naps", "tax law"]))
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]

    essay = [Message("user", "Write a long essay about the history of Rome.")]
    stream = backend.stream(
        essay, GenerationParams(temperature=0.0, max_tokens=300), request_id="client-cancel-0001"
    )
    received = []
    async for delta in stream:
        received.append(delta)
        if len(received) == 2:
            assert await backend.cancel("client-cancel-0001")
    assert received[-1].finish_reason == "cancelled"
    await backend.aclose()


async def test_adapters_reach_the_service_and_come_back_applied(service, adapters) -> None:
    """The router's choice (two LoRA adapters, one prompt-only) through the client to the
    running service: weights applied with their gates, the prompt injected, both reported."""
    owner = await adapters.user()
    first, second = await adapters.publish(owner, seed=30), await adapters.publish(owner, seed=31)
    chosen = [
        AdapterUse(first.adapter_id, 0.8),
        AdapterUse(second.adapter_id, 0.4),
        AdapterUse("tone", 0.5, mode="prompt", prompt_instructions="Answer in one word."),
    ]
    backend = _backend(service)
    greedy = GenerationParams(temperature=0.0, max_tokens=12)
    completion = await backend.complete(FRANCE, greedy, adapters=chosen)
    lora = [(a.id, a.weight, a.version) for a in completion.adapters if a.how == "lora"]
    assert lora == [(first.adapter_id, 0.8, 1), (second.adapter_id, 0.4, 1)]
    assert {"event": "prompt_injected", "id": "tone"} in completion.trace
    deltas = [d async for d in backend.stream(FRANCE, greedy, adapters=chosen)]
    assert "".join(d.text for d in deltas) == completion.text
    assert deltas[-1].adapters == completion.adapters
    await backend.aclose()
