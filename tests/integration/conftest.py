"""Fixtures for the model tests: the real converted SmolLM2, loaded once per session."""

from __future__ import annotations

import pytest

from shared.lm.convert import ensure_weights
from shared.lm.model import build_model, forward_fn
from shared.lm.tokenizer import ChatTokenizer
from shared.lm.weights import TOKENIZER_FILE, load_checkpoint


@pytest.fixture(scope="session")
def lm(settings):
    directory = ensure_weights(settings.weights_dir)
    checkpoint = load_checkpoint(directory)
    state, step = forward_fn(build_model(checkpoint.config, checkpoint.tensors))
    tokenizer = ChatTokenizer.from_file(directory / TOKENIZER_FILE)
    return checkpoint.config, state, step, tokenizer
