"""Training LoRA adapters from feedback on the real SmolLM2-135M: a few steps on corrections
teach them (under the trained weights at the gate, the corrections become more likely than
under the base, also on held-out questions), a dislike is pushed below the base, the same seed
gives the same weights, the base is never written, the weights load where the engine serves
them and score there as they scored in training, and early stopping stops.

Budgets are small (3 samples of ≤ 64 tokens a batch, a few steps): every run shares one
compiled step."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import jax
import numpy as np
import pytest
from flax import nnx

from shared.neural import peft
from shared.neural.lora import LoraBank, LoraWeights, gather, install, pack
from shared.neural.model import KVCache
from shared.neural.runner import step_fn
from shared.neural.training.config import TRAINING_CONFIG_FILE, TrainingConfig, version_files
from shared.neural.training.evaluation import evaluate, promotion_decision, target_logprobs
from shared.neural.training.objective import FrozenBase, score_texts
from shared.neural.training.params import params_from_weights
from shared.neural.training.samples import (
    PREFERRED,
    UNDESIRABLE,
    EncodedText,
    TrainingSample,
    encode_sample,
)
from shared.neural.training.trainer import train

# A format habit the base does not have: its own answers are full sentences.
CORRECTIONS = [
    ("What is the capital of France?", "The capital of France is Paris.", "Answer: Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", "Answer: Tokyo."),
    ("What is the capital of Italy?", "The capital of Italy is Rome.", "Answer: Rome."),
]
HELD_OUT = [
    ("What is the capital of Spain?", "The capital of Spain is Madrid.", "Answer: Madrid."),
    ("What is the capital of Germany?", "The capital of Germany is Berlin.", "Answer: Berlin."),
]
# (question, the base's answer, the disliked answer)
DISLIKES = [
    ("What is the capital of France?", "The capital of France is Paris.", "Maybe Lyon, or Nice?"),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", "Maybe Osaka, or Kyoto?"),
    ("What is the capital of Italy?", "The capital of Italy is Rome.", "Maybe Milan, or Turin?"),
]
GATE = 0.7
CONFIG = TrainingConfig(
    rank=8, alpha=16, gate=GATE, batch_size=3, max_tokens=64, epochs=4, max_steps=4, seed=7
)
BANK_RANK = 16


def _correction(question: str, original: str, correction: str) -> TrainingSample:
    return TrainingSample(
        target=correction, kind=PREFERRED, messages=(("user", question),), alternative=original
    )


def _dislike(question: str, base_answer: str, disliked: str) -> TrainingSample:
    return TrainingSample(
        target=disliked, kind=UNDESIRABLE, messages=(("user", question),), alternative=base_answer
    )


def _digest(state) -> str:
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(state):
        digest.update(np.asarray(leaf).tobytes())
    return digest.hexdigest()


def _logprobs(base, tokenizer, samples, weights: LoraWeights | None) -> np.ndarray:
    """Each sample's summed target log-probability under the base plus `weights` at GATE."""
    sums, _ = target_logprobs(
        base, samples, tokenizer=tokenizer, weights=weights, gate=GATE, max_tokens=64, batch_size=3
    )
    return sums


@pytest.fixture(scope="module")
def base(lm) -> FrozenBase:
    config, state, _, _ = lm
    return FrozenBase.from_state(config, state)


@pytest.fixture(scope="module")
def base_digest(base) -> str:
    """The base's parameters before any training in this module."""
    return _digest(base.state)


@pytest.fixture(scope="module")
def corrected(base, base_digest, lm):
    calls: list[tuple[int, int, float]] = []
    samples = [_correction(*c) for c in CORRECTIONS]
    result = train(
        base, samples, CONFIG, tokenizer=lm[3], progress=lambda *call: calls.append(call)
    )
    return result, calls


def test_a_few_steps_on_corrections_make_them_likelier_at_the_gate(base, corrected, lm) -> None:
    result, calls = corrected
    tokenizer = lm[3]
    assert result.steps == 4 and result.stop_reason == "completed"
    assert [(step, total) for step, total, _ in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [loss for _, _, loss in calls] == list(result.losses)
    samples = [_correction(*c) for c in CORRECTIONS]
    before = _logprobs(base, tokenizer, samples, None)
    after = _logprobs(base, tokenizer, samples, result.weights)
    # Several nats more likely, every one of them (not merely a different output).
    assert (after > before + 2.0).all(), (before, after)

    # The habit carries over to questions it was not trained on: the measures and the rule.
    heldout = [_correction(*c) for c in HELD_OUT]
    kwargs = {"tokenizer": tokenizer, "gate": GATE, "max_tokens": 64, "batch_size": 3}
    new = evaluate(base, heldout, weights=result.weights, **kwargs)
    current = evaluate(base, heldout, weights=None, **kwargs)
    assert current.loss is not None and new.loss is not None
    assert new.loss < current.loss - 0.5
    assert (new.aligned, new.pairs) == (2, 2) and current.aligned == 0
    assert promotion_decision(new, current, n_heldout=len(heldout)).promote
    assert not promotion_decision(current, new, n_heldout=len(heldout)).promote


def test_the_same_seed_gives_bitwise_identical_weights(base, corrected, lm) -> None:
    first = corrected[0].weights
    again = train(base, [_correction(*c) for c in CORRECTIONS], CONFIG, tokenizer=lm[3]).weights
    assert first.tensors.keys() == again.tensors.keys()
    for key, (a, b) in first.tensors.items():
        np.testing.assert_array_equal(again.tensors[key][0], a)
        np.testing.assert_array_equal(again.tensors[key][1], b)
    assert any(b.any() for _, b in first.tensors.values())  # trained: B left zero


def test_the_kto_term_pushes_a_disliked_answer_below_the_base(base, lm) -> None:
    tokenizer = lm[3]
    samples = [_dislike(*d) for d in DISLIKES]
    result = train(base, samples, CONFIG, tokenizer=tokenizer)
    before = _logprobs(base, tokenizer, samples, None)
    after = _logprobs(base, tokenizer, samples, result.weights)
    assert (after < before - 5.0).all(), (before, after)


def test_training_leaves_the_base_weights_untouched(base, base_digest, corrected) -> None:
    assert _digest(base.state) == base_digest


def test_trained_weights_round_trip_through_peft_and_serve_as_trained(base, corrected, lm) -> None:
    result = corrected[0]
    config = base.config
    files, checksum = version_files(result.weights, CONFIG)
    assert checksum == peft.checksum(files)
    assert TrainingConfig.from_json(files[TRAINING_CONFIG_FILE]) == CONFIG
    parsed = peft.parse(files, config, max_rank=BANK_RANK)
    parsed.validate(config, max_rank=BANK_RANK)
    assert (parsed.rank, parsed.alpha) == (CONFIG.rank, CONFIG.alpha)
    for key, (a, b) in result.weights.tensors.items():
        np.testing.assert_array_equal(parsed.tensors[key][0], a)
        np.testing.assert_array_equal(parsed.tensors[key][1], b)

    # Served from the engine's bank (rank 16, zero padded) at the gate, the adapter gives the
    # log-probability the training forward gives, for the answer's first token: the one the
    # adapter moves most (the base starts its answer otherwise).
    sample = _correction(*HELD_OUT[0])
    encoded = encode_sample(sample, lm[3], max_tokens=64)
    ids = encoded.ids[: encoded.target_start + 1]
    first_token = EncodedText(ids=ids, target_start=len(ids) - 1, truncated=False)
    params = params_from_weights(parsed, config, rank=CONFIG.rank)
    trained, _ = score_texts(
        base, [first_token], params, scale=parsed.scale, gate=GATE, batch_size=1, length=64
    )
    untrained, _ = score_texts(
        base, [first_token], params, scale=parsed.scale, gate=0.0, batch_size=1, length=64
    )
    assert trained[0] > untrained[0] + 1.0
    bank = install(
        LoraBank.zeros(config, slots=2, rank=BANK_RANK),
        np.int32(1),
        pack(parsed, config, rank=BANK_RANK),
    )
    lora = gather(bank, np.array([[1]], np.int32), np.array([[GATE]], np.float32))
    state, step = step_fn(nnx.merge(base.graphdef, base.state))  # the same arrays, not a copy
    tokens = np.zeros((1, 64), np.int32)
    tokens[0, : len(ids) - 1] = ids[:-1]
    logits, _, _ = step(
        state,
        tokens,
        np.arange(64, dtype=np.int32)[None],
        KVCache.zeros(config, batch=1, length=64),
        None,
        np.array([len(ids) - 2], np.int32),
        lora,
        attend_len=64,
    )
    served = np.asarray(jax.nn.log_softmax(logits[0]))[ids[-1]]
    assert abs(served - float(trained[0])) < 1e-3


def test_early_stopping_stops_and_returns_the_best_checks_weights(base, lm) -> None:
    samples = [_correction(*c) for c in CORRECTIONS]
    validation = [_correction(*c) for c in HELD_OUT]
    # No later check can beat the first by 1000 nats: the run stops at the second check.
    config = replace(CONFIG, epochs=10, max_steps=10, check_every=1, patience=1, min_delta=1e3)
    result = train(base, samples, config, tokenizer=lm[3], validation=validation)
    assert result.stop_reason == "early_stopping"
    assert (result.steps, result.total_steps, len(result.checks)) == (2, 10, 2)
    assert result.monitored == "validation" and result.returned_check == 0
    # The returned weights are the first check's: those of a one-step run with the same seed.
    one_step = train(base, samples, replace(config, max_steps=1), tokenizer=lm[3]).weights
    for key, (a, b) in one_step.tensors.items():
        np.testing.assert_array_equal(result.weights.tensors[key][0], a)
        np.testing.assert_array_equal(result.weights.tensors[key][1], b)
