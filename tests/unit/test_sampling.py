"""Host-side sampling: exact top-k / top-p sets, the softmax distribution, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from shared.neural.sampling import SamplingParams, _nucleus, sample

VOCAB = 49152


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.parametrize("scale", [0.3, 3.0, 12.0])
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.999])
def test_nucleus_equals_a_full_sort(scale: float, top_p: float) -> None:
    probs = _softmax(np.random.default_rng(7).standard_normal(VOCAB) * scale)
    order = np.argsort(-probs, kind="stable")
    expected = order[: int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1]
    kept = _nucleus(probs, top_p)
    assert sorted(kept.tolist()) == sorted(expected.tolist())
    assert probs[kept].sum() >= top_p - 1e-12


def test_greedy_is_the_argmax() -> None:
    logits = np.random.default_rng(1).standard_normal(VOCAB).astype(np.float32)
    assert sample(logits, SamplingParams(temperature=0.0), np.random.default_rng()) == int(
        logits.argmax()
    )


def test_draws_follow_the_tempered_softmax() -> None:
    logits = np.array([0.0, 1.0, 2.0, -1.0], np.float32)
    rng = np.random.default_rng(3)
    for temperature in (1.0, 0.5):
        params = SamplingParams(temperature=temperature)
        counts = np.bincount([sample(logits, params, rng) for _ in range(20000)], minlength=4)
        np.testing.assert_allclose(counts / 20000, _softmax(logits / temperature), atol=0.015)


def test_top_k_and_top_p_never_leave_their_set() -> None:
    logits = np.random.default_rng(5).standard_normal(VOCAB).astype(np.float32) * 4
    rng = np.random.default_rng(0)
    top5 = set(np.argsort(-logits)[:5].tolist())
    assert {sample(logits, SamplingParams(top_k=5), rng) for _ in range(300)} <= top5
    logits[:8] = 30 - np.arange(8, dtype=np.float32) * 0.5  # a head of eight likely tokens
    nucleus = set(_nucleus(_softmax(logits / 0.7), 0.8).tolist())
    drawn = {sample(logits, SamplingParams(temperature=0.7, top_p=0.8), rng) for _ in range(300)}
    assert drawn <= nucleus and len(drawn) > 1


def test_a_seed_gives_the_same_tokens() -> None:
    logits = np.random.default_rng(9).standard_normal(VOCAB).astype(np.float32) * 2
    params = SamplingParams(temperature=0.9, top_p=0.95)

    def run(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        return [sample(logits, params, rng) for _ in range(20)]

    assert run(11) == run(11)
    assert run(11) != run(12)


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": -1}]
)
def test_invalid_parameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_logit_bias_moves_greedy_and_sampled_choices() -> None:
    logits = np.array([4.0, 1.0, 0.5, -2.0], np.float32)
    forced = SamplingParams(temperature=0, logit_bias=((3, 100.0),))
    banned = SamplingParams(temperature=0, logit_bias=((0, -100.0),))
    assert sample(logits, forced, np.random.default_rng(0)) == 3
    assert sample(logits, banned, np.random.default_rng(0)) == 1
    # Sampling never draws a banned token, and the row itself is left as it was.
    rng = np.random.default_rng(1)
    hot = SamplingParams(temperature=1.5, logit_bias=((0, -100.0), (1, -100.0)))
    assert {sample(logits, hot, rng) for _ in range(300)} <= {2, 3}
    assert logits.tolist() == [4.0, 1.0, 0.5, -2.0]
    # A bias past the row's end is ignored (the service refuses such ids before this).
    assert sample(logits, SamplingParams(temperature=0, logit_bias=((99, 100.0),)), rng) == 0


@pytest.mark.parametrize("bias", [((-1, 1.0),), ((0, 100.5),), ((0, -101.0),)])
def test_invalid_logit_bias_is_refused(bias: tuple) -> None:
    with pytest.raises(ValueError, match="logit_bias"):
        SamplingParams(logit_bias=bias)
