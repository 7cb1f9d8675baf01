"""Every multi-LoRA implementation ("gather", "dense", "ragged") on a tiny random Llama (no
weights needed): a heterogeneous batch (rows with no adapter, one, three; slots shared between
rows and named twice in a row; gates, 0 included) equals, row by row, a model whose weights
were merged independently in numpy, at prefill (T > 1) and at decode (T = 1); and each bank
layout holds exactly what was installed."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from shared.neural.config import LlamaConfig
from shared.neural.lora import (
    LORA_IMPLS,
    gather,
    install,
    merged_tensors,
    new_bank,
    pack,
    random_lora,
    relayout,
    slot_fields,
)
from shared.neural.model import KVCache, build_model
from tests.helpers import random_checkpoint

TINY = LlamaConfig(vocab_size=96, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)
RANK = 4
PROMPT = 8
# f32 throughout; the paths differ from the merged weights only in summation order.
TOLERANCE = 1e-4

# Adapter sets per row, as (adapter index, gate); J = 3 (the widest row).
# The order matters: sorted by slot, the entries land far from their rows (a mix-up of the
# "ragged" path's permutation and its inverse changes the result).
ROWS = [
    [(2, 1.0)],
    [(1, 0.7), (2, 0.5), (0, 0.3)],
    [],
    [(0, 1.0)],
    [(0, 0.5), (0, 0.25)],  # one slot named twice: the gates add
    [(1, 0.0)],  # gate 0: the base model
]
# J = 1 (as the engine gathers when no row has more than one adapter).
SINGLE_ROWS = [[], [(1, 1.0)], [(2, 0.5)], [(1, 1.0)]]


@pytest.fixture(scope="module")
def tensors() -> dict[str, np.ndarray]:
    return random_checkpoint(TINY, 0)


@pytest.fixture(scope="module")
def adapters():
    """Non-zero A and B; the second has a smaller rank than the bank (zero padded)."""
    return [
        random_lora(TINY, rank=RANK, alpha=8, seed=1, scale=0.2),
        random_lora(TINY, rank=2, alpha=4, seed=2, scale=0.2),
        random_lora(TINY, rank=RANK, alpha=16, seed=3, scale=0.15),
    ]


def _runner(model) -> Any:
    graphdef, state = nnx.split(model)

    @functools.partial(jax.jit, static_argnames=("attend_len",))
    def run(state, tokens, positions, cache, lora, *, attend_len):
        return nnx.merge(graphdef, state)(tokens, positions, cache, attend_len, lora=lora)

    return functools.partial(run, state)


def _prefill_then_decode(run, tokens: np.ndarray, lora) -> np.ndarray:
    """Logits [B, PROMPT + 1, V]: a prefill of the prompts, then one decode step each."""
    batch = tokens.shape[0]
    positions = np.broadcast_to(np.arange(PROMPT, dtype=np.int32), (batch, PROMPT)).copy()
    cache = KVCache.zeros(TINY, batch=batch, length=64)
    prefill, cache = run(tokens[:, :PROMPT], positions, cache, lora, attend_len=64)
    step = np.full((batch, 1), PROMPT, np.int32)
    decode, _ = run(tokens[:, PROMPT:], step, cache, lora, attend_len=64)
    return np.concatenate([np.asarray(prefill), np.asarray(decode)], axis=1)


def _bank(impl: str, adapters):
    bank = new_bank(TINY, slots=len(adapters) + 1, rank=RANK, impl=impl)
    for slot, weights in enumerate(adapters, start=1):
        bank = install(bank, np.int32(slot), pack(weights, TINY, rank=RANK))
    return bank


def _slots_and_gates(rows) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    slots = np.zeros((len(rows), width), np.int32)
    gates = np.zeros((len(rows), width), np.float32)
    for row, chosen in enumerate(rows):
        for j, (index, gate) in enumerate(chosen):
            slots[row, j], gates[row, j] = index + 1, gate
    return slots, gates


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, TINY.vocab_size, (len(ROWS), PROMPT + 1)).astype(np.int32)


@pytest.fixture(scope="module")
def merged(tensors, adapters, tokens) -> dict[tuple[str, int], np.ndarray]:
    """Each row's logits from its own merged model (the independent reference), computed once
    for every implementation's test."""
    out = {}
    for name, rows in (("J3", ROWS), ("J1", SINGLE_ROWS)):
        for row, chosen in enumerate(rows):
            weights = merged_tensors(tensors, TINY, [(adapters[i], g) for i, g in chosen])
            run = _runner(build_model(TINY, weights))
            out[name, row] = _prefill_then_decode(run, tokens[row : row + 1], None)[0]
    return out


@pytest.mark.parametrize("name", ["J3", "J1"])
@pytest.mark.parametrize("impl", LORA_IMPLS)
def test_each_impl_matches_numpy_merged_weights(
    impl, name, tensors, adapters, tokens, merged
) -> None:
    rows = ROWS if name == "J3" else SINGLE_ROWS
    tokens = tokens[: len(rows)]
    run = _runner(build_model(TINY, tensors))
    lora = gather(_bank(impl, adapters), *_slots_and_gates(rows))
    batched = _prefill_then_decode(run, tokens, lora)
    base = _prefill_then_decode(run, tokens, None)
    for row, chosen in enumerate(rows):
        expected = merged[name, row]
        assert np.abs(batched[row] - expected).max() < TOLERANCE, f"{impl} row {row}"
        if any(gate for _, gate in chosen):  # the adapters really change the output
            assert np.abs(batched[row] - base[row]).max() > 100 * TOLERANCE, f"{impl} row {row}"
        else:
            assert np.abs(batched[row] - base[row]).max() < 1e-5, f"{impl} row {row}"


@pytest.mark.parametrize("impl", LORA_IMPLS)
def test_each_layout_holds_what_was_installed(impl, adapters) -> None:
    bank = _bank(impl, adapters)
    assert (bank.impl, bank.slots, bank.rank) == (impl, len(adapters) + 1, RANK)
    for slot, weights in enumerate(adapters, start=1):
        packed = pack(weights, TINY, rank=RANK)
        held = slot_fields(bank, slot)
        assert held.keys() == packed.keys()
        for name in packed:
            np.testing.assert_array_equal(held[name], packed[name], err_msg=f"{impl} {name}")
    assert all(np.all(v == 0) for v in slot_fields(bank, 0).values())  # slot 0: no adapter
    for other in LORA_IMPLS:  # the same adapters in another implementation's layout
        moved = relayout(bank, TINY, other)
        assert moved.impl == other
        for slot in range(1, len(adapters) + 1):
            for name, value in slot_fields(bank, slot).items():
                np.testing.assert_array_equal(slot_fields(moved, slot)[name], value)


@pytest.mark.parametrize("impl", LORA_IMPLS)
def test_bf16_bank_rounds_only_the_update(impl, tensors, adapters, tokens, merged) -> None:
    """A bfloat16 bank (half the bytes a step reads) computes the update in bf16: each row
    stays within a few percent of its adapters' effect of the merged f32 model, and rows
    without an adapter are the base model, exactly."""
    run = _runner(build_model(TINY, tensors))
    bank = new_bank(TINY, slots=len(adapters) + 1, rank=RANK, impl=impl, dtype=jnp.bfloat16)
    for slot, weights in enumerate(adapters, start=1):
        bank = install(bank, np.int32(slot), pack(weights, TINY, rank=RANK))
    batched = _prefill_then_decode(run, tokens, gather(bank, *_slots_and_gates(ROWS)))
    base = _prefill_then_decode(run, tokens, None)
    for row, chosen in enumerate(ROWS):
        effect = np.abs(merged["J3", row] - base[row]).max()
        error = np.abs(batched[row] - merged["J3", row]).max()
        if any(gate for _, gate in chosen):
            assert error < 0.05 * effect, f"{impl} row {row}: {error} of {effect}"
        else:
            assert error < 1e-5, f"{impl} row {row}"
