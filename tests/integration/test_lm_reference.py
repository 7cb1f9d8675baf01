"""Our Flax SmolLM2 against an independent implementation: Hugging Face transformers on PyTorch
loading the same GGUF with its own dequantizer, un-permutation and tokenizer conversion
(tests/reference/make_reference.py produced the committed file once)."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from shared.neural.generate import greedy
from shared.neural.model import KVCache
from shared.neural.tokenizer import ChatMessage

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "smollm2_reference.npz"
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain in one sentence why the sky is blue.",
]
# f32 on both sides; measured max |Δ| was 6e-5, so 1e-3 leaves room for other CPUs' kernels.
LOGIT_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(REFERENCE))


@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_tokens_and_last_position_logits_match_transformers(lm, reference, index) -> None:
    config, state, step, tokenizer = lm
    ids = tokenizer.encode_chat([ChatMessage("user", PROMPTS[index])])
    assert ids == reference[f"ids_{index}"].tolist()  # tokenizers agree exactly
    n = len(ids)
    logits, _ = step(
        state,
        jnp.asarray([ids], jnp.int32),
        jnp.asarray([list(range(n))], jnp.int32),
        KVCache.zeros(config, batch=1, length=n),
    )
    row = np.asarray(logits[0, -1], np.float64)
    top = reference[f"top_ids_{index}"]
    np.testing.assert_allclose(
        row[top], reference[f"top_logits_{index}"], atol=LOGIT_TOLERANCE, rtol=0
    )
    logsumexp = np.log(np.exp(row - row.max()).sum()) + row.max()
    assert abs(logsumexp - float(reference[f"logsumexp_{index}"])) < LOGIT_TOLERANCE
    assert int(row.argmax()) == int(top[0])


@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_greedy_continuations_match_transformers(lm, reference, index) -> None:
    config, state, step, tokenizer = lm
    ids = tokenizer.encode_chat([ChatMessage("user", PROMPTS[index])])
    expected = [t for t in reference[f"greedy_{index}"].tolist() if t != tokenizer.im_end_id]
    ours = greedy(step, state, config, [ids], max_new_tokens=24, stop_id=tokenizer.im_end_id)[0]
    assert ours == expected
