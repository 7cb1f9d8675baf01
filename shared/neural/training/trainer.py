"""Training a LoRA adapter from feedback samples: the loop around the jitted step.

Deterministic for a seed: A's initialisation and the order of samples come from numpy
generators seeded by `config.seed`, and XLA on a CPU computes the same program the same way, so
the same seed and data give bitwise-identical weights. Every batch of a run has one shape (see
`samples.sequence_length`), so the step compiles once.

Early stopping checks a monitored loss every `check_every` steps (default once an epoch): the
validation split's loss under the current weights when there is one, otherwise the mean
training loss since the previous check. After `patience` checks without an improvement of
`min_delta` the run stops. With a validation split the weights of its best check are returned;
on the training loss the last weights are (a window's mean loss was made by weights that moved
during the window: it scores no single set of them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax.numpy as jnp
import numpy as np

from shared.neural.lora import LoraWeights
from shared.neural.training.config import TrainingConfig
from shared.neural.training.objective import (
    Batch,
    FrozenBase,
    Objective,
    RowWeights,
    data_loss,
    optimizer,
    score_texts,
    train_step,
)
from shared.neural.training.params import (
    Params,
    initial_params,
    params_from_weights,
    update_norm_squared,
    weights_from_params,
)
from shared.neural.training.samples import (
    UNDESIRABLE,
    ChatEncoder,
    EncodedText,
    TrainingSample,
    batches,
    encode_sample,
    pack_rows,
    sequence_length,
)

# Called after every step with (step, total steps, loss); it may raise to cancel the run.
ProgressCallback = Callable[[int, int, float], None]
StopReason = Literal["completed", "early_stopping", "time_budget"]


class TrainingDiverged(ArithmeticError):
    """The loss stopped being a finite number: no weights are returned."""


@dataclass(frozen=True)
class TrainingResult:
    weights: LoraWeights
    config: TrainingConfig
    steps: int
    total_steps: int
    stop_reason: StopReason
    losses: tuple[float, ...]  # the loss of every step
    checks: tuple[float, ...]  # the monitored loss at every early-stopping check
    monitored: Literal["validation", "training"]
    returned_check: int  # the index in `checks` whose weights are returned (-1: no check ran)
    last_loss_parts: dict[str, float]  # the last step's SFT, KTO and L2 terms
    seconds: float
    samples: int
    validation_samples: int
    target_tokens: int
    truncated_samples: int
    sequence_length: int

    def metrics(self) -> dict[str, Any]:
        """Everything but the weights, JSON-ready."""
        return {
            "steps": self.steps,
            "total_steps": self.total_steps,
            "stop_reason": self.stop_reason,
            "losses": list(self.losses),
            "checks": list(self.checks),
            "monitored": self.monitored,
            "returned_check": self.returned_check,
            "last_loss_parts": dict(self.last_loss_parts),
            "seconds": self.seconds,
            "samples": self.samples,
            "validation_samples": self.validation_samples,
            "target_tokens": self.target_tokens,
            "truncated_samples": self.truncated_samples,
            "sequence_length": self.sequence_length,
        }


def train(
    base: FrozenBase,
    samples: Sequence[TrainingSample],
    config: TrainingConfig,
    *,
    tokenizer: ChatEncoder,
    init: LoraWeights | None = None,
    validation: Sequence[TrainingSample] = (),
    progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TrainingResult:
    """Trains the LoRA parameters only (the base stays frozen) on `samples`, starting from
    `init` (the served version: same rank and alpha, see `TrainingConfig.continuing`) or from
    PEFT's initialisation, at `config.gate`. Returns the weights in PEFT's orientation."""
    if not samples:
        raise ValueError("no training samples")
    if init is not None and (init.rank, init.alpha) != (config.rank, config.alpha):
        raise ValueError(
            f"continuing an adapter of rank {init.rank}, alpha {init.alpha} needs the same in"
            " the config (TrainingConfig.continuing)"
        )
    started = clock()
    size, max_tokens = config.batch_size, config.max_tokens
    encoded = [encode_sample(s, tokenizer, max_tokens=max_tokens) for s in samples]
    held = [encode_sample(s, tokenizer, max_tokens=max_tokens) for s in validation]
    length = sequence_length(encoded + held, max_tokens=max_tokens)
    if init is None:
        params = initial_params(base.config, rank=config.rank, seed=config.seed)
    else:
        params = params_from_weights(init, base.config, rank=config.rank, fill_seed=config.seed)
    scorer = _Scorer(base, config, length)
    references = scorer.references(samples, encoded, params)
    held_rows = _row_weights(validation, scorer.references(validation, held, params))
    objective = Objective(
        scale=jnp.float32(config.scale),
        gate=jnp.float32(config.gate),
        kto_beta=jnp.float32(config.kto_beta),
        desirable_weight=jnp.float32(config.desirable_weight),
        undesirable_weight=jnp.float32(config.undesirable_weight),
        l2=jnp.float32(config.l2),
    )
    transform = optimizer(config.learning_rate, config.max_grad_norm)
    opt_state = transform.init(params)

    steps_per_epoch = math.ceil(len(samples) / size)
    total = min(config.max_steps, config.epochs * steps_per_epoch)
    check_every = config.check_every or steps_per_epoch
    order_rng = np.random.default_rng([config.seed, 1])
    stopping = _EarlyStopping(config.patience, config.min_delta)
    losses: list[float] = []
    window: list[float] = []  # training losses since the last check
    reason: StopReason = "completed"
    while len(losses) < total and reason == "completed":
        for indices in batches(len(samples), size, order_rng.permutation(len(samples))):
            batch = _batch(
                [encoded[i] for i in indices],
                _row_weights([samples[i] for i in indices], references[indices], rows=size),
                length=length,
            )
            params, opt_state, loss, parts = train_step(
                base.graphdef, transform, base.state, params, opt_state, batch, objective
            )
            value = float(loss)
            if not math.isfinite(value):
                raise TrainingDiverged(f"the loss is {value} at step {len(losses) + 1}")
            losses.append(value)
            window.append(value)
            step = len(losses)
            if progress is not None:
                progress(step, total, value)
            if step % check_every == 0 or step == total:
                if held:
                    monitored = scorer.objective(held, held_rows, params, objective)
                else:
                    monitored = float(np.mean(window))
                window.clear()
                if stopping.stale_after(monitored, params):
                    reason = "early_stopping"
            budget = config.time_budget_s
            if reason == "completed" and budget is not None and clock() - started >= budget:
                reason = "time_budget"
            if step >= total or reason != "completed":
                break

    returned, returned_check = params, len(stopping.checks) - 1
    if held and stopping.best_params is not None:
        returned, returned_check = stopping.best_params, stopping.best_check
    return TrainingResult(
        weights=weights_from_params(returned, base.config, rank=config.rank, alpha=config.alpha),
        config=config,
        steps=len(losses),
        total_steps=total,
        stop_reason=reason,
        losses=tuple(losses),
        checks=tuple(stopping.checks),
        monitored="validation" if held else "training",
        returned_check=returned_check,
        last_loss_parts={name: float(value) for name, value in parts.items()},
        seconds=clock() - started,
        samples=len(samples),
        validation_samples=len(validation),
        target_tokens=sum(text.target_tokens for text in encoded),
        truncated_samples=sum(text.truncated for text in encoded),
        sequence_length=length,
    )


def _row_weights(
    samples: Sequence[TrainingSample], references: np.ndarray, *, rows: int | None = None
) -> RowWeights:
    """The per-row fields of `samples`, padded with weight-0 rows to `rows`."""
    count = len(samples) if rows is None else rows
    weights = np.zeros(count, np.float32)
    undesirable = np.zeros(count, np.float32)
    reference = np.zeros(count, np.float32)
    for row, sample in enumerate(samples):
        weights[row] = sample.weight
        undesirable[row] = sample.kind == UNDESIRABLE
        reference[row] = references[row]
    return RowWeights(
        weights=jnp.asarray(weights),
        undesirable=jnp.asarray(undesirable),
        reference=jnp.asarray(reference),
    )


def _batch(texts: Sequence[EncodedText], rows: RowWeights, *, length: int) -> Batch:
    packed = pack_rows(texts, batch_size=int(rows.weights.shape[0]), length=length)
    return Batch(
        tokens=jnp.asarray(packed.tokens),
        labels=jnp.asarray(packed.labels),
        mask=jnp.asarray(packed.mask),
        rows=rows,
    )


class _EarlyStopping:
    """Counts checks without an improvement of `min_delta` on the best monitored loss, and
    remembers the parameters of the best check."""

    def __init__(self, patience: int, min_delta: float):
        self.patience, self.min_delta = patience, min_delta
        self.checks: list[float] = []
        self.best, self.best_check, self.stale = math.inf, -1, 0
        self.best_params: Params | None = None

    def stale_after(self, monitored: float, params: Params) -> bool:
        """Records a check; True once `patience` checks in a row brought no improvement."""
        self.checks.append(monitored)
        if monitored < self.best - self.min_delta:
            self.best, self.best_check, self.stale = monitored, len(self.checks) - 1, 0
            self.best_params = params
        else:
            self.stale += 1
        return self.stale >= self.patience


class _Scorer:
    """Log-probabilities outside the training step, at the run's one sequence length."""

    def __init__(self, base: FrozenBase, config: TrainingConfig, length: int):
        self.base, self.config, self.length = base, config, length

    def references(
        self, samples: Sequence[TrainingSample], texts: Sequence[EncodedText], params: Params
    ) -> np.ndarray:
        """The frozen base's summed log-probability of each undesirable target (0 for the
        others: the preferred term needs no reference)."""
        reference = np.zeros(len(samples), np.float32)
        wanted = [i for i, sample in enumerate(samples) if sample.kind == UNDESIRABLE]
        if wanted:
            sums, _ = self._score([texts[i] for i in wanted], params, gate=0.0)
            reference[wanted] = sums
        return reference

    def objective(
        self,
        texts: Sequence[EncodedText],
        rows: RowWeights,
        params: Params,
        objective: Objective,
    ) -> float:
        """The loss of the validation split under `params` (its data term plus the L2 term)."""
        sums, counts = self._score(texts, params, gate=self.config.gate)
        data, _, _ = data_loss(jnp.asarray(sums), jnp.asarray(counts), rows, objective)
        penalty = objective.l2 * update_norm_squared(params, objective.scale)
        return float(data + penalty)

    def _score(
        self, texts: Sequence[EncodedText], params: Params, *, gate: float
    ) -> tuple[np.ndarray, np.ndarray]:
        return score_texts(
            self.base,
            texts,
            params,
            scale=self.config.scale,
            gate=gate,
            batch_size=self.config.batch_size,
            length=self.length,
        )
