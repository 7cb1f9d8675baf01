"""Per-row LoRA adapters on the real model: the batched, never-merged path equals, row by row,
a model whose weights were merged independently in numpy (W + g·alpha/r·B·A), through each
implementation of the multi-LoRA path ("gather", "dense", "ragged")."""

from __future__ import annotations

import numpy as np
import pytest

from shared.neural.convert import ensure_weights
from shared.neural.engine import Engine
from shared.neural.generate import greedy
from shared.neural.lora import (
    LORA_IMPLS,
    AdapterError,
    gather,
    install,
    merged_tensors,
    new_bank,
    pack,
    random_lora,
)
from shared.neural.model import KVCache, build_model, forward_fn
from shared.neural.runner import step_fn
from shared.neural.sampling import SamplingParams
from shared.neural.tokenizer import ChatMessage
from shared.neural.weights import load_checkpoint
from tests.helpers import Collector

RANK = 8
# Logits of the merged and the gathered path differ only by summation order.
LOGIT_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def checkpoint(settings):
    return load_checkpoint(ensure_weights(settings.weights_dir))


@pytest.fixture(scope="module")
def adapters(checkpoint):
    """Three adapters with non-zero A and B; the second has a smaller rank (zero padded)."""
    config = checkpoint.config
    return [
        random_lora(config, rank=RANK, alpha=16, seed=1, scale=0.05),
        random_lora(config, rank=4, alpha=8, seed=2, scale=0.05),
        random_lora(config, rank=RANK, alpha=32, seed=3, scale=0.04),
    ]


# Adapter sets per batch row, as (adapter index, gate); [] is a row with no adapter.
ROW_SETS = [[(0, 1.0)], [(1, 0.7), (2, 0.5)], [], [(2, 1.0), (0, 0.3), (1, 0.5)]]


def _prompts(tokenizer) -> list[list[int]]:
    questions = ["What is the capital of France?", "Name a fruit.", "Hi", "Count to five."]
    return [tokenizer.encode_chat([ChatMessage("user", q)]) for q in questions]


def _last_logits(step, state, config, prompt, **kwargs) -> np.ndarray:
    width = 64
    tokens = np.zeros((1, width), np.int32)
    tokens[0, : len(prompt)] = prompt
    positions = np.arange(width, dtype=np.int32)[None]
    cache = KVCache.zeros(config, batch=1, length=width)
    logits, _, _ = step(
        state, tokens, positions, cache, None, np.array([len(prompt) - 1], np.int32), **kwargs
    )
    return np.asarray(logits)[0]


def _bank(config, adapters, impl, count=None):
    chosen = adapters[:count]
    bank = new_bank(config, slots=len(chosen) + 1, rank=RANK, impl=impl)
    for slot, weights in enumerate(chosen, start=1):
        bank = install(bank, np.int32(slot), pack(weights, config, rank=RANK))
    return bank


@pytest.fixture(scope="module")
def merged_rows(lm, checkpoint, adapters) -> list[np.ndarray]:
    """Each row's last logits from its own merged model (the independent reference), computed
    once for every implementation."""
    config, prompts = checkpoint.config, _prompts(lm[3])
    expected = []
    for prompt, chosen in zip(prompts, ROW_SETS, strict=True):
        merged = merged_tensors(
            checkpoint.tensors, config, [(adapters[i], gate) for i, gate in chosen]
        )
        m_state, m_step = step_fn(build_model(config, merged))
        expected.append(_last_logits(m_step, m_state, config, prompt, lora=None, attend_len=64))
    return expected


@pytest.mark.parametrize("impl", LORA_IMPLS)
def test_mixed_adapter_batch_matches_numpy_merged_weights(
    impl, lm, checkpoint, adapters, merged_rows
) -> None:
    config, tokenizer = checkpoint.config, lm[3]
    bank = _bank(config, adapters, impl)
    state, step = step_fn(build_model(config, checkpoint.tensors))

    # One batch: four rows, four different adapter sets, each row in its own cache slot.
    prompts = _prompts(tokenizer)
    width, batch = 64, len(prompts)
    tokens = np.zeros((batch, width), np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, : len(prompt)] = prompt
    positions = np.broadcast_to(np.arange(width, dtype=np.int32), (batch, width)).copy()
    slots = np.zeros((batch, 3), np.int32)
    gates = np.zeros((batch, 3), np.float32)
    for row, chosen in enumerate(ROW_SETS):
        for j, (index, gate) in enumerate(chosen):
            slots[row, j], gates[row, j] = index + 1, gate
    cache = KVCache.zeros(config, batch=batch, length=width)
    last = np.array([len(p) - 1 for p in prompts], np.int32)
    batched, _, _ = step(
        state, tokens, positions, cache, None, last, gather(bank, slots, gates), attend_len=64
    )
    batched = np.asarray(batched)

    base = _last_logits(step, state, config, prompts[2], lora=None, attend_len=64)
    for row, chosen in enumerate(ROW_SETS):
        assert np.abs(batched[row] - merged_rows[row]).max() < LOGIT_TOLERANCE, f"row {row}"
        if chosen:  # the adapters really change the output
            alone = _last_logits(step, state, config, prompts[row], lora=None, attend_len=64)
            assert np.abs(batched[row] - alone).max() > 0.1
    assert np.abs(batched[2] - base).max() < LOGIT_TOLERANCE  # the no-adapter row is the base


GATES = (0.0, 0.5, 2.0)


@pytest.fixture(scope="module")
def merged_gates(lm, checkpoint, adapters) -> dict[float, np.ndarray]:
    config, prompt = checkpoint.config, _prompts(lm[3])[0]
    expected = {}
    for gate in GATES:
        merged = merged_tensors(checkpoint.tensors, config, [(adapters[0], gate)])
        m_state, m_step = step_fn(build_model(config, merged))
        expected[gate] = _last_logits(m_step, m_state, config, prompt, lora=None, attend_len=64)
    return expected


@pytest.mark.parametrize("impl", LORA_IMPLS)
def test_gates_scale_the_update(impl, lm, checkpoint, adapters, merged_gates) -> None:
    """Gate g equals merging g·alpha/r·B·A; gate 0 is the base model."""
    config, prompt = checkpoint.config, _prompts(lm[3])[0]
    bank = _bank(config, adapters, impl, count=1)
    state, step = step_fn(build_model(config, checkpoint.tensors))
    base = _last_logits(step, state, config, prompt, lora=None, attend_len=64)
    for gate in GATES:
        lora = gather(bank, np.array([[1]], np.int32), np.array([[gate]], np.float32))
        gated = _last_logits(step, state, config, prompt, lora=lora, attend_len=64)
        assert np.abs(gated - merged_gates[gate]).max() < LOGIT_TOLERANCE, f"gate {gate}"
        if gate == 0.0:
            assert np.abs(gated - base).max() < 1e-5


def test_engine_serves_each_request_its_own_adapters(lm, checkpoint, adapters) -> None:
    """Concurrent requests with different adapter sets through the continuous-batching engine
    give the greedy text of their own merged model."""
    config, tokenizer = checkpoint.config, lm[3]
    engine = Engine(
        build_model(config, checkpoint.tensors),
        decode_text=tokenizer.decode,
        stop_token_ids=[tokenizer.im_end_id],
        slots=4,
        max_seq_len=128,
        queue_size=8,
        prefill_buckets=(32, 64),
        adapter_slots=3,
        adapter_rank=RANK,
    )
    for slot, weights in enumerate(adapters, start=1):
        engine.install_adapter(slot, weights)
    engine.start()
    try:
        params = SamplingParams(temperature=0.0, max_tokens=12)
        prompts = _prompts(tokenizer)
        collectors = []
        for prompt, chosen in zip(prompts, ROW_SETS, strict=True):
            collector = Collector()
            engine.submit(prompt, params, collector, adapters=[(i + 1, gate) for i, gate in chosen])
            collectors.append(collector)
        results = [c.wait() for c in collectors]
    finally:
        engine.stop(drain=False)
    for prompt, chosen, result in zip(prompts, ROW_SETS, results, strict=True):
        merged = merged_tensors(
            checkpoint.tensors, config, [(adapters[i], gate) for i, gate in chosen]
        )
        m_state, m_step = forward_fn(build_model(config, merged))
        expected = greedy(
            m_step, m_state, config, [prompt], max_new_tokens=12, stop_id=tokenizer.im_end_id
        )[0]
        assert result.text == tokenizer.decode(expected)


def test_engine_refuses_unknown_adapter_slots(lm, checkpoint) -> None:
    config, tokenizer = checkpoint.config, lm[3]
    engine = Engine(
        build_model(config, checkpoint.tensors),
        decode_text=tokenizer.decode,
        stop_token_ids=[],
        slots=1,
        max_seq_len=64,
        adapter_slots=2,
        adapter_rank=4,
    )
    params = SamplingParams(temperature=0.0, max_tokens=1)
    with pytest.raises(ValueError, match="adapter"):
        engine.submit([1, 2], params, Collector(), adapters=[(3, 1.0)])
    with pytest.raises(ValueError, match="adapter"):
        engine.submit([1, 2], params, Collector(), adapters=[(1, 1.0)] * 4)
    with pytest.raises(AdapterError, match="rank"):
        engine.install_adapter(1, random_lora(config, rank=8, alpha=8, seed=0))
