"""The trainable LoRA parameters on a tiny random Llama (no weights needed): conversions to and
from PEFT's orientation, a forward pass that equals the model with W + g·alpha/r·B·A merged in
numpy, the update-norm penalty, PEFT's initialisation, and the loop's stop rules."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from shared.neural.config import LlamaConfig
from shared.neural.lora import LoraWeights, merged_tensors, random_lora
from shared.neural.model import build_model
from shared.neural.training.config import TrainingConfig
from shared.neural.training.objective import FrozenBase, score_texts
from shared.neural.training.params import (
    initial_params,
    params_from_weights,
    update_norm_squared,
    weights_from_params,
)
from shared.neural.training.samples import PREFERRED, TrainingSample, encode_sample
from shared.neural.training.trainer import train
from tests.helpers import random_checkpoint

TINY = LlamaConfig(vocab_size=96, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)


class _Bytes:
    """Tokens 2..95 for ASCII text; 1 ends a turn. Samples here carry rendered prompt ids."""

    im_end_id = 1

    def encode(self, text: str) -> list[int]:
        return [2 + (byte % 94) for byte in text.encode()]

    def encode_chat(self, messages) -> list[int]:
        raise AssertionError("the samples here carry prompt ids")


def _tensors(seed: int) -> dict[str, np.ndarray]:
    return random_checkpoint(TINY, seed)


@pytest.fixture(scope="module")
def tensors() -> dict[str, np.ndarray]:
    return _tensors(0)


@pytest.fixture(scope="module")
def base(tensors) -> FrozenBase:
    return FrozenBase.from_model(build_model(TINY, tensors))


def _samples(count: int = 4) -> list[TrainingSample]:
    return [
        TrainingSample(
            target=f"reply {i} ok",
            kind=PREFERRED,
            prompt_ids=tuple(range(3 + i, 13 + i)),
        )
        for i in range(count)
    ]


def test_parameters_round_trip_to_peft_orientation_and_pad_smaller_ranks() -> None:
    weights = random_lora(TINY, rank=4, alpha=8, seed=3)
    back = weights_from_params(params_from_weights(weights, TINY, rank=4), TINY, rank=4, alpha=8)
    for key, (a, b) in weights.tensors.items():
        np.testing.assert_array_equal(back.tensors[key][0], a)
        np.testing.assert_array_equal(back.tensors[key][1], b)
    padded = weights_from_params(params_from_weights(weights, TINY, rank=8), TINY, rank=8, alpha=8)
    for key, (a, b) in weights.tensors.items():
        pa, pb = padded.tensors[key]
        assert pa.shape == (8, a.shape[1]) and not pa[4:].any() and not pb[:, 4:].any()
        np.testing.assert_allclose(pb @ pa, b @ a, rtol=1e-5, atol=1e-9)
    back.validate(TINY, max_rank=4)


def test_the_training_forward_equals_merged_weights_at_the_gate(base, tensors) -> None:
    weights = random_lora(TINY, rank=4, alpha=8, seed=5, scale=0.2)
    texts = [encode_sample(s, _Bytes(), max_tokens=64) for s in _samples()]
    params = params_from_weights(weights, TINY, rank=8)  # padded: the scale stays alpha/4
    for gate in (0.5, 1.0):
        sums, counts = score_texts(
            base, texts, params, scale=weights.scale, gate=gate, batch_size=2, length=32
        )
        merged = FrozenBase.from_model(
            build_model(TINY, merged_tensors(tensors, TINY, [(weights, gate)]))
        )
        expected, _ = score_texts(
            merged, texts, params, scale=weights.scale, gate=0.0, batch_size=2, length=32
        )
        np.testing.assert_allclose(sums, expected, rtol=1e-4, atol=1e-4)
        assert counts.tolist() == [t.target_tokens for t in texts]
    plain, _ = score_texts(
        base, texts, params, scale=weights.scale, gate=0.0, batch_size=2, length=32
    )
    assert np.abs(plain - sums).max() > 0.1  # the adapter matters at the gates above


def test_update_norm_is_the_squared_size_of_scale_times_b_a() -> None:
    weights = random_lora(TINY, rank=4, alpha=12, seed=7)
    expected = sum(
        float(np.sum((weights.scale * b.astype(np.float64) @ a) ** 2))
        for a, b in weights.tensors.values()
    )
    params = params_from_weights(weights, TINY, rank=4)
    value = float(update_norm_squared(params, jnp.float32(weights.scale)))
    assert value == pytest.approx(expected, rel=1e-4)


def test_peft_initialisation_changes_nothing_and_is_fixed_by_the_seed(base) -> None:
    params = initial_params(TINY, rank=4, seed=1)
    weights = weights_from_params(params, TINY, rank=4, alpha=8)
    for (_, target), (a, b) in weights.tensors.items():
        d_in = TINY.d_model if target != "o" else TINY.n_heads * TINY.head_dim
        assert not b.any() and a.any() and np.abs(a).max() <= 1 / np.sqrt(d_in)
    assert float(update_norm_squared(params, jnp.float32(2.0))) == 0.0
    again = initial_params(TINY, rank=4, seed=1)
    other = initial_params(TINY, rank=4, seed=2)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert not np.array_equal(params["a_qkv"], other["a_qkv"])


def test_a_run_stops_at_its_time_budget(base) -> None:
    ticks = itertools.count(0, 10)  # every reading of the clock is 10 s later
    config = TrainingConfig(
        rank=4, alpha=8, batch_size=2, max_tokens=32, epochs=10, max_steps=10, time_budget_s=15
    )
    result = train(base, _samples(), config, tokenizer=_Bytes(), clock=lambda: next(ticks))
    assert result.stop_reason == "time_budget" and result.steps == 2 and result.total_steps == 10


def test_training_lowers_the_loss_and_continuing_starts_from_the_given_weights(base) -> None:
    config = TrainingConfig(
        rank=4, alpha=8, batch_size=4, max_tokens=32, epochs=8, max_steps=8, learning_rate=1e-2
    )
    seen: list[tuple[int, int, float]] = []
    first = train(base, _samples(), config, tokenizer=_Bytes(), progress=lambda *a: seen.append(a))
    assert [(s, t) for s, t, _ in seen] == [(i, 8) for i in range(1, 9)]
    assert [loss for _, _, loss in seen] == list(first.losses)
    assert first.losses[-1] < first.losses[0]
    parts = first.metrics()["last_loss_parts"]
    assert parts["kto"] == 0.0 and parts["sft"] > 0 and parts["l2"] > 0  # only preferred rows
    assert first.losses[-1] == pytest.approx(parts["sft"] + parts["l2"], rel=1e-5)
    # One step from the trained weights starts near where the first run ended.
    more = train(
        base,
        _samples(),
        TrainingConfig.continuing(first.weights, batch_size=4, max_tokens=32, max_steps=1),
        tokenizer=_Bytes(),
        init=first.weights,
    )
    assert more.losses[0] < first.losses[0]
    with pytest.raises(ValueError, match="continuing"):
        train(base, _samples(), TrainingConfig(rank=8), tokenizer=_Bytes(), init=first.weights)


def test_gate_zero_scores_the_base_whatever_the_adapter(base) -> None:
    texts = [encode_sample(s, _Bytes(), max_tokens=64) for s in _samples(2)]
    empty = params_from_weights(LoraWeights(rank=1, alpha=1.0, tensors={}), TINY, rank=4)
    loud = params_from_weights(random_lora(TINY, rank=4, alpha=8, seed=9, scale=1.0), TINY, rank=4)
    a, _ = score_texts(base, texts, empty, scale=1.0, gate=0.0, batch_size=2, length=32)
    b, _ = score_texts(base, texts, loud, scale=2.0, gate=0.0, batch_size=2, length=32)
    np.testing.assert_array_equal(a, b)
