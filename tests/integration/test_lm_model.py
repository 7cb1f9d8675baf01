"""The real SmolLM2-135M-Instruct, converted from the packaged GGUF and run by the Flax module."""

from __future__ import annotations

import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from shared.neural.convert import ensure_weights, packaged_gguf
from shared.neural.generate import greedy
from shared.neural.model import KVCache
from shared.neural.tokenizer import ChatMessage
from shared.neural.weights import WeightsError, convert_gguf, load_checkpoint


def _ask(lm, *questions: str, max_new_tokens: int = 16) -> list[str]:
    config, state, step, tokenizer = lm
    prompts = [tokenizer.encode_chat([ChatMessage("user", q)]) for q in questions]
    outputs = greedy(
        step, state, config, prompts, max_new_tokens=max_new_tokens, stop_id=tokenizer.im_end_id
    )
    return [tokenizer.decode(o) for o in outputs]


def test_chatml_prompt_and_tokenizer_round_trip(lm) -> None:
    tokenizer = lm[3]
    prompt = tokenizer.chat_prompt([ChatMessage("user", "Hi")])
    assert prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by"
        " Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tokenizer.encode(prompt)
    assert ids[0] == tokenizer.im_start_id and tokenizer.im_end_id in ids
    text = "Paris, 2024 — naïve café ✓"
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_greedy_answers_to_factual_questions(lm) -> None:
    answers = _ask(
        lm,
        "What is the capital of France?",
        "What is the capital of Germany?",
        "What is the capital of Japan?",
    )
    assert answers[0] == "The capital of France is Paris."
    assert "Berlin" in answers[1]
    assert "Tokyo" in answers[2]


def test_a_batch_of_different_prompts_equals_each_prompt_alone(lm) -> None:
    questions = [
        "What is the capital of France?",
        "Name a primary color.",
        "Write one sentence about the sea, please, in a calm tone.",
    ]
    together = _ask(lm, *questions)
    alone = [_ask(lm, q)[0] for q in questions]
    assert together == alone


def test_decoding_with_the_kv_cache_matches_a_full_forward_pass(lm) -> None:
    config, state, step, tokenizer = lm
    ids = tokenizer.encode_chat([ChatMessage("user", "Tell me about rivers.")])
    n = len(ids)
    full = np.asarray(ids, np.int32)[None]
    positions = np.arange(n, dtype=np.int32)[None]
    reference, _ = step(
        state, jnp.asarray(full), jnp.asarray(positions), KVCache.zeros(config, batch=1, length=64)
    )
    # Prefill all but the last token, then decode the last one from the cache.
    _, cache = step(
        state,
        jnp.asarray(full[:, :-1]),
        jnp.asarray(positions[:, :-1]),
        KVCache.zeros(config, batch=1, length=64),
    )
    decoded, _ = step(state, jnp.asarray(full[:, -1:]), jnp.asarray(positions[:, -1:]), cache)
    np.testing.assert_allclose(
        np.asarray(decoded[0, 0]), np.asarray(reference[0, -1]), rtol=1e-4, atol=1e-3
    )


def test_a_corrupt_gguf_is_refused(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with packaged_gguf().open("rb") as source, truncated.open("wb") as out:
        out.write(source.read(1 << 20))
    with pytest.raises(WeightsError):
        convert_gguf(truncated, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_damaged_cache_is_detected_and_reconverted(settings, tmp_path: Path) -> None:
    cache = tmp_path / "weights"
    shutil.copytree(ensure_weights(settings.weights_dir), cache)
    with (cache / "model.safetensors").open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(WeightsError, match="checksum"):
        load_checkpoint(cache)
    ensure_weights(cache)
    assert load_checkpoint(cache).config.n_layers == 30
