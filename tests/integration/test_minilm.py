"""MiniLM embeddings in JAX against sentence-transformers (committed reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.neural.minilm import MAX_TOKENS, Embedder

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "minilm_reference.npz"
TOLERANCE = 1e-5  # measured max |Δ| 1.5e-7


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_vectors_match_sentence_transformers(embedder: Embedder) -> None:
    reference = np.load(REFERENCE)
    vectors = embedder.embed([str(s) for s in reference["sentences"]])
    assert vectors.shape == (5, 384)
    np.testing.assert_allclose(vectors, reference["embeddings"], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrases_score_closer_than_unrelated_sentences(embedder: Embedder) -> None:
    guitar, paraphrase, stocks, cats = embedder.embed(
        [
            "A man is playing a guitar on stage.",
            "Someone performs music with a guitar in front of an audience.",
            "The stock market fell sharply on Monday.",
            "Cats like to sleep in warm places.",
        ]
    )
    assert guitar @ paraphrase > max(guitar @ stocks, guitar @ cats) + 0.3


def test_padding_does_not_change_a_vector(embedder: Embedder) -> None:
    short = "Hello there."
    alone = embedder.embed([short])[0]
    padded = embedder.embed([short, "a much longer sentence " * 10])[0]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_long_inputs_are_truncated_and_empty_batches_are_fine(embedder: Embedder) -> None:
    text = "word " * 2000
    assert embedder.token_counts([text]) == [MAX_TOKENS]
    assert embedder.embed([text]).shape == (1, 384)
    assert embedder.embed([]).shape == (0, 384)


def test_any_batch_runs_on_a_program_compiled_ahead(embedder: Embedder) -> None:
    """Rows and lengths are padded to buckets (more than the largest batch is split), so the
    programs compiled before the service is ready are all `embed` ever runs, and padding or
    splitting changes no vector."""
    shapes = len(Embedder.shapes())
    assert embedder.compile_all() == shapes == 20
    texts = [("word " * (i * 7 % 300)).strip() or "x" for i in range(70)]
    together = embedder.embed(texts)
    assert together.shape == (70, 384)
    for size in (1, 2, 3, 4, 5, 16, 17, 31, 32, 33):
        np.testing.assert_allclose(embedder.embed(texts[:size]), together[:size], atol=1e-5)
    assert embedder.compile_all() == shapes  # nothing new was compiled
