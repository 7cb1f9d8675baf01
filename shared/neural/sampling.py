"""Per-request sampling on the host: OpenAI's logit bias, temperature, top-k, top-p, with a
generator per request so a seed gives the same tokens whatever else is in the batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# A per-request rewrite of a row of logits [V] given the tokens generated so far, applied on the
# host before `sample` (e.g. copy-aware decoding for grounded answers).
LogitsProcessor = Callable[[np.ndarray, Sequence[int]], np.ndarray]


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    max_decode_ms: int | None = None
    # OpenAI's `logit_bias`: (token id, bias in [-100, 100]) added to that token's logit before
    # anything else (greedy included): -100 all but bans a token, +100 all but forces it.
    logit_bias: tuple[tuple[int, float], ...] = ()
    # Token ids of the text an answer may copy spans from (a grounded answer's sources): names,
    # numbers and terms being copied continue as they do there (shared.neural.copying).
    copy_from: tuple[int, ...] = ()

    @property
    def on_host(self) -> bool:
        """Whether each token needs this row's logits on the host (the device samples the rest)."""
        return bool(self.logit_bias or self.copy_from)

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0 or self.max_tokens < 1:
            raise ValueError("top_k must be >= 0 and max_tokens >= 1")
        if any(t < 0 or not -100 <= b <= 100 for t, b in self.logit_bias):
            raise ValueError("logit_bias maps token ids >= 0 to biases in [-100, 100]")


# Nucleus sampling sorts only this many of the most likely tokens when they already hold the
# top_p mass (almost always); the full vocabulary is sorted only when they do not.
_NUCLEUS_CANDIDATES = 512


def sample(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """One token from a row of logits [V]. Exact top-k/top-p, without sorting the whole
    vocabulary: a full argsort of 49k floats per token per request costs more than the
    decode step it follows."""
    if params.logit_bias:
        logits = biased(logits, params.logit_bias)
    if params.temperature == 0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / params.temperature
    vocab = scaled.shape[0]
    if params.top_k and params.top_k < vocab:
        candidates = np.argpartition(scaled, -params.top_k)[-params.top_k :]
        scaled = scaled[candidates]
    else:
        candidates = np.arange(vocab)
    probs = np.exp(scaled - scaled.max())
    if params.top_p < 1.0:
        probs /= probs.sum()
        keep = _nucleus(probs, params.top_p)
        candidates, probs = candidates[keep], probs[keep] / probs[keep].sum()
    # Inverse-CDF draw: what Generator.choice does, without re-validating p over the vocabulary.
    cdf = np.cumsum(probs)
    drawn = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return int(candidates[min(drawn, cdf.shape[0] - 1)])


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Indices of the smallest most-likely set whose mass reaches top_p (the token that
    crosses it included), most likely first."""
    if probs.shape[0] > _NUCLEUS_CANDIDATES:
        head = np.argpartition(probs, -_NUCLEUS_CANDIDATES)[-_NUCLEUS_CANDIDATES:]
        order = head[np.argsort(-probs[head], kind="stable")]
        if probs[order].sum() < top_p:
            order = np.argsort(-probs, kind="stable")
    else:
        order = np.argsort(-probs, kind="stable")
    cumulative = np.cumsum(probs[order])
    return order[: int(np.searchsorted(cumulative, top_p)) + 1]


def biased(logits: np.ndarray, bias: tuple[tuple[int, float], ...]) -> np.ndarray:
    """A copy of the row with each bias added (ids past the row's end are ignored: the service
    refuses them before they get here)."""
    out = logits.astype(np.float64, copy=True)
    ids = np.fromiter((t for t, _ in bias), np.int64, len(bias))
    values = np.fromiter((b for _, b in bias), np.float64, len(bias))
    inside = ids < out.shape[0]
    np.add.at(out, ids[inside], values[inside])
    return out


def processor_for(params: SamplingParams) -> LogitsProcessor | None:
    """The request's logits processor (built once, when it is submitted), or None."""
    if not params.copy_from:
        return None
    from shared.neural.copying import copy_processor  # here: copying imports this module

    return copy_processor(params.copy_from)
