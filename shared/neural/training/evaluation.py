"""Judging a trained version on held-out feedback, and the rule that promotes it.

The measures (docs/model.md, "Training"), on the most recent events (`holdout_split`):
- **loss**: over held-out `preferred` events (likes and corrections), the mean over events of
  the mean cross-entropy (nats a token) of the preferred target, `<|im_end|>` included, under a
  version (the base plus its adapter at the gate the router applies). Lower is better.
- **alignment**: the share of held-out events with two texts (`TrainingSample.ranked_texts`:
  the correction over the original answer, a liked answer over the base's, the base's answer
  over a disliked one) where the version gives the preferred text the higher log-probability,
  per token (a mean over the text's tokens, so a short text is not preferred for being short).
  A tie counts as not preferring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from shared.neural.lora import LoraWeights
from shared.neural.training.objective import FrozenBase, score_texts
from shared.neural.training.params import params_from_weights
from shared.neural.training.samples import (
    PREFERRED,
    ChatEncoder,
    EncodedText,
    TrainingSample,
    encode_sample,
    encode_text,
    sequence_length,
)

HOLDOUT_FRACTION = 0.1
MIN_HELDOUT = 2
# Held-out losses closer than this (nats a token) are a tie: no improvement.
LOSS_EPSILON = 1e-3
# The rank the base's (empty) adapter is padded to: the default training rank, so the base and a
# default-rank version share a compiled program.
DEFAULT_BASE_RANK = 8

Event = TypeVar("Event")


def holdout_split(
    events: Sequence[Event], *, fraction: float = HOLDOUT_FRACTION, minimum: int = MIN_HELDOUT
) -> tuple[list[Event], list[Event]]:
    """(training events, held-out events) of events sorted oldest first: the most recent
    `fraction` (rounded up), at least `minimum`. Holding out `minimum` must leave at least one
    event to train on, so below `minimum + 1` events (fewer than 3 by default) nothing is held
    out: the version trains on everything and cannot be judged (`promotion_decision` keeps it as
    a candidate)."""
    if len(events) <= minimum:
        return list(events), []
    held = max(minimum, math.ceil(fraction * len(events)))
    return list(events[:-held]), list(events[-held:])


@dataclass(frozen=True)
class Evaluation:
    """A version's measures on a hold-out. `loss` is None without a preferred event;
    `alignment` is None without an event that has two texts."""

    loss: float | None
    aligned: int
    pairs: int
    events: int

    @property
    def alignment(self) -> float | None:
        return self.aligned / self.pairs if self.pairs else None


def evaluate(
    base: FrozenBase,
    heldout: Sequence[TrainingSample],
    *,
    tokenizer: ChatEncoder,
    weights: LoraWeights | None,
    gate: float,
    max_tokens: int = 256,
    batch_size: int = 8,
    rank: int | None = None,
) -> Evaluation:
    """The measures of one version (`weights` at `gate`; None: the base model alone).
    `rank`: the rank the adapter is zero padded to (default: its own, 8 for the base), so the
    new version, the one in use and the base can share one compiled program."""
    texts: list[EncodedText] = []
    loss_rows: list[int] = []
    ranked_rows: list[tuple[int, int]] = []  # (preferred text, dispreferred text)

    def add(prompt: list[int], text: str) -> int:
        texts.append(encode_text(prompt, text, tokenizer, max_tokens=max_tokens))
        return len(texts) - 1

    for sample in heldout:
        if sample.kind != PREFERRED and sample.alternative is None:
            continue
        prompt = sample.prompt(tokenizer)
        target = add(prompt, sample.target)
        if sample.kind == PREFERRED:
            loss_rows.append(target)
        if sample.alternative is not None:
            other = add(prompt, sample.alternative)
            ranked_rows.append((target, other) if sample.kind == PREFERRED else (other, target))
    if not texts:
        return Evaluation(loss=None, aligned=0, pairs=0, events=len(heldout))
    sums, counts = _score(
        base, texts, weights, gate=gate, max_tokens=max_tokens, batch_size=batch_size, rank=rank
    )
    per_token = sums / np.maximum(counts, 1.0)
    aligned = sum(bool(per_token[good] > per_token[bad]) for good, bad in ranked_rows)
    return Evaluation(
        loss=float(-np.mean(per_token[loss_rows])) if loss_rows else None,
        aligned=aligned,
        pairs=len(ranked_rows),
        events=len(heldout),
    )


def target_logprobs(
    base: FrozenBase,
    samples: Sequence[TrainingSample],
    *,
    tokenizer: ChatEncoder,
    weights: LoraWeights | None,
    gate: float,
    max_tokens: int = 256,
    batch_size: int = 8,
    rank: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's target (`<|im_end|>` included, capped as in training): its summed
    log-probability under the base plus `weights` at `gate` (None: the base alone), and its
    token count."""
    texts = [encode_sample(s, tokenizer, max_tokens=max_tokens) for s in samples]
    if not texts:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return _score(
        base, texts, weights, gate=gate, max_tokens=max_tokens, batch_size=batch_size, rank=rank
    )


def _score(
    base: FrozenBase,
    texts: list[EncodedText],
    weights: LoraWeights | None,
    *,
    gate: float,
    max_tokens: int,
    batch_size: int,
    rank: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    padded_rank = rank or (weights.rank if weights is not None else DEFAULT_BASE_RANK)
    if weights is None:  # the base: no adapter, and gate 0 adds exactly nothing
        weights, gate = LoraWeights(rank=1, alpha=1.0, tensors={}), 0.0
    return score_texts(
        base,
        texts,
        params_from_weights(weights, base.config, rank=padded_rank),
        scale=weights.scale,
        gate=gate,
        batch_size=batch_size,
        length=sequence_length(texts, max_tokens=max_tokens),
    )


@dataclass(frozen=True)
class Promotion:
    promote: bool
    reason: str


def promotion_decision(new: Evaluation, current: Evaluation, n_heldout: int) -> Promotion:
    """Whether the new version replaces the one in use (or the base, where none is), judged on
    the same hold-out of `n_heldout` events. Promoted when its held-out loss is lower by more
    than `LOSS_EPSILON` and its alignment is not lower. Otherwise it is kept as a candidate:
    - fewer than `MIN_HELDOUT` held-out events: never promoted (no evidence either way);
    - a loss tie (within `LOSS_EPSILON`) is no improvement: the served version stays;
    - alignment compares shares exactly (counts, no epsilon): with two pairs one event is
      half the measure, and a fall of one event blocks promotion;
    - no preferred event held out (only dislikes): no loss to compare, so the alignment must
      rise strictly instead; no pair either: nothing to judge, not promoted.
    """
    if n_heldout < MIN_HELDOUT:
        return Promotion(False, f"{n_heldout} held-out events: too few to judge")
    alignment_falls = (
        new.pairs > 0
        and current.pairs > 0
        and new.aligned * current.pairs < current.aligned * new.pairs
    )
    if new.loss is None or current.loss is None:
        if new.loss is not None or current.loss is not None:
            return Promotion(False, "held-out loss measured for one version only")
        if new.pairs == 0 or current.pairs == 0:
            return Promotion(False, "no held-out event to judge by")
        if new.aligned * current.pairs > current.aligned * new.pairs:
            return Promotion(True, "alignment rose (no preferred event held out)")
        return Promotion(False, "alignment did not rise (no preferred event held out)")
    if not new.loss < current.loss - LOSS_EPSILON:
        return Promotion(
            False, f"held-out loss did not improve ({new.loss:.4f} vs {current.loss:.4f})"
        )
    if alignment_falls:
        fell = f"{new.aligned}/{new.pairs} vs {current.aligned}/{current.pairs}"
        return Promotion(False, f"alignment fell ({fell})")
    return Promotion(
        True, f"held-out loss improved ({new.loss:.4f} vs {current.loss:.4f}), alignment held"
    )
