"""The real SmolLM2-135M-Instruct in bf16 (INFERENCE_DTYPE=bfloat16) against the f32
reference: Hugging Face transformers' logits (tests/reference/smollm2_reference.npz, the file
test_lm_reference.py checks the f32 model against to 1e-3) and our own f32 model."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from shared.neural.convert import ensure_weights
from shared.neural.generate import greedy
from shared.neural.model import KVCache, build_model, forward_fn
from shared.neural.tokenizer import ChatMessage, ChatTokenizer
from shared.neural.weights import TOKENIZER_FILE, load_checkpoint

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "smollm2_reference.npz"
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain in one sentence why the sky is blue.",
]
# Measured on this CPU (30 layers, bf16 weights, activations and cache, f32 accumulation and
# residual stream), against transformers f32 on the reference's top logits: max |Δ| ≤ 0.18
# (logits' std ≈ 3.4), log-sum-exp |Δ| ≤ 0.07; against our f32 model over every prompt position:
# max |Δ| ≤ 8.6 % and RMS ≤ 1.4 % of the logits' std, top-1 equal at every position.
TOP_LOGIT_TOLERANCE = 0.5
LOGSUMEXP_TOLERANCE = 0.2
RMS_TOLERANCE = 0.04  # of the f32 logits' standard deviation
TOP1_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def models(settings):
    directory = ensure_weights(settings.weights_dir)
    checkpoint = load_checkpoint(directory)
    tokenizer = ChatTokenizer.from_file(directory / TOKENIZER_FILE)
    f32 = forward_fn(build_model(checkpoint.config, checkpoint.tensors))
    bf16_model = build_model(checkpoint.config, checkpoint.tensors, dtype=jnp.bfloat16)
    return checkpoint.config, tokenizer, f32, forward_fn(bf16_model), bf16_model.dtype


def _prefill(config, step, ids: list[int], dtype) -> np.ndarray:
    state, run = step
    n = len(ids)
    logits, cache = run(
        state,
        jnp.asarray([ids], jnp.int32),
        jnp.asarray([list(range(n))], jnp.int32),
        KVCache.zeros(config, batch=1, length=n, dtype=dtype),
    )
    assert logits.dtype == jnp.float32 and cache.dtype == dtype
    return np.asarray(logits[0], np.float64)


@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_bf16_logits_match_the_f32_references(models, index) -> None:
    config, tokenizer, f32, bf16, dtype = models
    reference = dict(np.load(REFERENCE))
    ids = tokenizer.encode_chat([ChatMessage("user", PROMPTS[index])])
    ours = _prefill(config, bf16, ids, dtype)
    row, top = ours[-1], reference[f"top_ids_{index}"]
    np.testing.assert_allclose(
        row[top], reference[f"top_logits_{index}"], atol=TOP_LOGIT_TOLERANCE, rtol=0
    )
    logsumexp = np.log(np.exp(row - row.max()).sum()) + row.max()
    assert abs(logsumexp - float(reference[f"logsumexp_{index}"])) < LOGSUMEXP_TOLERANCE
    assert int(row.argmax()) == int(top[0])
    exact = _prefill(config, f32, ids, jnp.float32)
    assert 0 < np.sqrt(((ours - exact) ** 2).mean()) <= RMS_TOLERANCE * exact.std()
    assert (ours.argmax(-1) == exact.argmax(-1)).mean() >= TOP1_AGREEMENT


def test_bf16_greedy_answer(models) -> None:
    config, tokenizer, _, (state, step), _ = models
    ids = tokenizer.encode_chat([ChatMessage("user", PROMPTS[0])])
    # generate.greedy allocates an f32 cache: the model casts new keys/values to it
    out = greedy(step, state, config, [ids], max_new_tokens=16, stop_id=tokenizer.im_end_id)
    assert tokenizer.decode(out[0]) == "The capital of France is Paris."
