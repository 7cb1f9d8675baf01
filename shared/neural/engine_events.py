"""What the engine takes and gives: requests, their streamed events, and the text rules for
streaming them (stop strings held back until they cannot match)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from shared.neural.sampling import LogitsProcessor, SamplingParams

FinishReason = Literal["stop", "length", "cancelled", "timeout", "error"]


class EngineBusy(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"admission queue full; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class TokenEvent:
    request_id: str
    text: str  # the new text since the previous event (may be empty while a stop string is held)
    token_id: int
    at: float


@dataclass(frozen=True)
class DoneEvent:
    request_id: str
    text: str  # the whole completion
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    truncated: bool
    at: float


Event = TokenEvent | DoneEvent


@dataclass
class Request:
    request_id: str
    prompt: list[int]
    params: SamplingParams
    on_event: Callable[[Event], None]
    rng: np.random.Generator  # host sampling (`params.on_host`)
    key: np.ndarray  # device sampling: PRNGKey(seed)
    processor: LogitsProcessor | None = None
    generated: list[int] = field(default_factory=list)
    emitted: str = ""
    deadline: float | None = None
    adapters: tuple[tuple[int, float], ...] = ()  # (bank slot, gate)


def hold_back(text: str, stops: Sequence[str]) -> str:
    """Text safe to emit: without an incomplete UTF-8 sequence at the end, and without a
    suffix that could still become a stop string."""
    text = text.rstrip("\ufffd")
    keep = len(text)
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                keep = min(keep, len(text) - size)
                break
    return text[:keep]
