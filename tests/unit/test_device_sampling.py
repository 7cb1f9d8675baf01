"""Sampling on the device: the same top-k and nucleus sets as the host sampler, draws that follow
the tempered softmax, greedy rows untouched, and a draw fixed by the request's key and index."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from shared.neural.device_sampling import SamplingRows, _kept, choose, request_key
from shared.neural.sampling import SamplingParams, _nucleus

VOCAB = 4096


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _rows(params: list[SamplingParams], seeds: list[int] | None = None) -> SamplingRows:
    seeds = seeds or list(range(len(params)))
    return SamplingRows.build(list(params), [request_key(s) for s in seeds])


def test_top_k_keeps_each_rows_k_largest() -> None:
    logits = np.random.default_rng(0).standard_normal((3, VOCAB)).astype(np.float32) * 3
    params = [SamplingParams(top_k=k) for k in (1, 7, 300)]
    kept = np.asarray(_kept(jnp.asarray(logits), _rows(params)))
    for row, k in enumerate((1, 7, 300)):
        expected = set(np.argsort(-logits[row])[:k].tolist())
        assert set(np.flatnonzero(kept[row]).tolist()) == expected


@pytest.mark.parametrize("scale", [0.3, 3.0, 12.0])
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.999])
def test_the_nucleus_is_the_host_samplers(scale: float, top_p: float) -> None:
    logits = (np.random.default_rng(7).standard_normal(VOCAB) * scale).astype(np.float32)
    temperature = 0.8
    params = SamplingParams(temperature=temperature, top_p=top_p)
    kept = np.asarray(_kept(jnp.asarray(logits[None]), _rows([params])))[0]
    host = _nucleus(_softmax(logits.astype(np.float64) / temperature), top_p)
    assert set(np.flatnonzero(kept).tolist()) == set(host.tolist())


def test_top_k_then_top_p_on_what_is_left() -> None:
    logits = np.random.default_rng(3).standard_normal(VOCAB).astype(np.float32) * 2
    params = SamplingParams(temperature=1.0, top_k=50, top_p=0.6)
    kept = np.asarray(_kept(jnp.asarray(logits[None]), _rows([params])))[0]
    top = np.argsort(-logits)[:50]
    host = top[_nucleus(_softmax(logits[top].astype(np.float64)), 0.6)]
    assert set(np.flatnonzero(kept).tolist()) == set(host.tolist())


def test_draws_follow_the_tempered_softmax() -> None:
    logits = np.array([0.0, 1.0, 2.0, -1.0], np.float32)
    draws = 20000
    for temperature in (1.0, 0.5):
        rows = _rows([SamplingParams(temperature=temperature)] * draws, [11] * draws)
        batch = jnp.asarray(np.tile(logits, (draws, 1)))
        tokens = np.asarray(choose(batch, rows, jnp.arange(draws, dtype=jnp.int32)))
        counts = np.bincount(tokens, minlength=4) / draws
        np.testing.assert_allclose(counts, _softmax(logits / temperature), atol=0.015)


def test_greedy_rows_take_the_argmax_beside_sampled_rows() -> None:
    logits = np.random.default_rng(1).standard_normal((4, VOCAB)).astype(np.float32)
    params = [SamplingParams(temperature=t) for t in (0.0, 1.0, 0.0, 0.7)]
    tokens = np.asarray(choose(jnp.asarray(logits), _rows(params), jnp.zeros(4, jnp.int32)))
    assert tokens[0] == logits[0].argmax() and tokens[2] == logits[2].argmax()


def test_a_draw_depends_on_the_key_and_index_only() -> None:
    logits = np.random.default_rng(5).standard_normal(VOCAB).astype(np.float32)
    params = SamplingParams(temperature=1.0)
    alone = choose(jnp.asarray(logits[None]), _rows([params], [42]), jnp.array([3], jnp.int32))
    others = np.random.default_rng(6).standard_normal((3, VOCAB)).astype(np.float32)
    batch = jnp.asarray(np.vstack([others[:2], logits[None], others[2:]]))
    rows = _rows([params] * 4, [1, 2, 42, 3])
    inside = choose(batch, rows, jnp.array([0, 9, 3, 5], jnp.int32))
    assert int(alone[0]) == int(inside[2])
    many = _rows([params] * 64, [42] * 64)
    draws = choose(jnp.asarray(np.tile(logits, (64, 1))), many, jnp.arange(64, dtype=jnp.int32))
    assert len(set(np.asarray(draws).tolist())) > 10  # each index draws afresh
