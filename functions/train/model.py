"""The train function's model: SmolLM2 from the local weights cache, frozen, loaded once per
process and kept for the jobs after (540 MB, seconds to load), and the blocking work a job does
with it (run in a worker thread): the base's greedy answers, training and evaluation.

The one piece of state the function keeps across requests, as the inference service keeps its
engine: `Model` holds it, built by main.py when the function's module is loaded (a Lambda
container's init, or the local train host's start), loaded on the first job."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from shared.neural import compile_cache, peft
from shared.neural.config import LlamaConfig
from shared.neural.convert import ensure_weights
from shared.neural.generate import greedy
from shared.neural.lora import LoraWeights
from shared.neural.model import build_model, forward_fn
from shared.neural.tokenizer import ChatTokenizer
from shared.neural.training import (
    Evaluation,
    FrozenBase,
    ProgressCallback,
    TrainingConfig,
    TrainingResult,
    TrainingSample,
    evaluate,
    train,
)
from shared.neural.weights import TOKENIZER_FILE, load_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    config: LlamaConfig
    base: FrozenBase
    step: Any  # the jitted forward step (greedy answers)
    state: Any


class Model:
    """Loads lazily, once, whichever thread asks first; later jobs reuse it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: ChatTokenizer | None = None
        self._loaded: Loaded | None = None
        self._directory: Path | None = None

    def tokenizer(self, weights_dir: Path) -> ChatTokenizer:
        """The tokenizer alone (a job renders and counts its dataset before it needs the
        weights)."""
        with self._lock:
            if self._tokenizer is None:
                self._directory = ensure_weights(weights_dir)  # converts once, checks the sum
                self._tokenizer = ChatTokenizer.from_file(self._directory / TOKENIZER_FILE)
            return self._tokenizer

    def loaded(self, weights_dir: Path, jax_cache_dir: Path) -> Loaded:
        self.tokenizer(weights_dir)
        with self._lock:
            if self._loaded is None:
                started = time.monotonic()
                # The directory of this device and jaxlib, every program written (as the
                # inference service has it): a later process loads instead of compiling.
                compile_cache.configure(jax_cache_dir)
                assert self._directory is not None
                checkpoint = load_checkpoint(self._directory, verify_checksum=False)
                state, step = forward_fn(build_model(checkpoint.config, checkpoint.tensors))
                self._loaded = Loaded(
                    config=checkpoint.config,
                    base=FrozenBase.from_state(checkpoint.config, state),
                    step=step,
                    state=state,
                )
                log.info("train model loaded in %.1fs", time.monotonic() - started)
            return self._loaded


def backend() -> str:
    return str(jax.default_backend())


def parse_weights(files: dict[str, bytes], *, max_rank: int = 64) -> LoraWeights:
    """A served version's PEFT files as weights (checked against SmolLM2's shapes)."""
    return peft.parse(files, LlamaConfig(), max_rank=max_rank)


def checksum(files: dict[str, bytes]) -> str:
    return peft.checksum(files)


def base_answers(
    model: Loaded,
    tokenizer: ChatTokenizer,
    prompts: Sequence[list[int]],
    *,
    max_new_tokens: int,
) -> list[str | None]:
    """The base model's greedy answer to each prompt, None where it did not end within
    `max_new_tokens` (a cut answer would be scored with an end it never had). The batch is
    padded to a power of two so few shapes compile."""
    if not prompts:
        return []
    size = 1
    while size < len(prompts):
        size *= 2
    padded = [*prompts, *[prompts[0]] * (size - len(prompts))]
    # One more token than allowed: an answer that ends exactly at the cap still shows its end.
    outputs = greedy(
        model.step, model.state, model.config, padded,
        max_new_tokens=max_new_tokens + 1, stop_id=tokenizer.im_end_id,
    )  # fmt: skip
    return [
        tokenizer.decode(ids) if len(ids) <= max_new_tokens else None
        for ids in outputs[: len(prompts)]
    ]


@dataclass(frozen=True)
class Trained:
    result: TrainingResult
    new: Evaluation
    current: Evaluation


def train_and_evaluate(
    model: Loaded,
    tokenizer: ChatTokenizer,
    training: Sequence[TrainingSample],
    heldout: Sequence[TrainingSample],
    config: TrainingConfig,
    *,
    init: LoraWeights | None,
    progress: ProgressCallback,
    clock: Callable[[], float] = time.monotonic,
) -> Trained:
    """Trains from `init` (the served version, or a fresh LoRA), then scores the new version
    and the one in use (the base where none has weights) on the same hold-out, at the gate,
    in one compiled program (same rank, length cap and batch size)."""
    result = train(
        model.base, training, config, tokenizer=tokenizer, init=init, progress=progress,
        clock=clock,
    )  # fmt: skip

    def measure(weights: LoraWeights | None) -> Evaluation:
        return evaluate(
            model.base, heldout, tokenizer=tokenizer, weights=weights, gate=config.gate,
            max_tokens=config.max_tokens, batch_size=config.batch_size, rank=config.rank,
        )  # fmt: skip

    return Trained(result=result, new=measure(result.weights), current=measure(init))
