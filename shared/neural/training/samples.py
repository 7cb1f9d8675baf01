"""Training samples from feedback, encoded as the inference service renders a prompt, capped,
masked and padded to few shapes.

A sample is a prompt and a target answer. `preferred` (a liked answer, or a correction) is
learned by cross-entropy on its target tokens; `undesirable` (a disliked answer) is pushed
below the frozen base by the KTO term (see `objective`). `alternative` is the text an
evaluation compares the target with: the original answer for a correction, the base's answer
for a like or a dislike.

The target is followed by `<|im_end|>`, so a sample also teaches where the answer stops; prompt
and target are tokenized apart, as generation sees them (the answer's tokens follow the
rendered prompt's tokens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from shared.neural.tokenizer import ChatMessage

PREFERRED: Literal["preferred"] = "preferred"
UNDESIRABLE: Literal["undesirable"] = "undesirable"
SampleKind = Literal["preferred", "undesirable"]
# A prompt cut from the left keeps at least its last tokens: the open assistant turn and the end
# of the user's message, without which the target has no context at all.
MIN_PROMPT_TOKENS = 16
# The shortest padded length: shorter buckets save little and add compiled shapes.
MIN_SEQUENCE_LENGTH = 32


class ChatEncoder(Protocol):
    """What encoding needs of `ChatTokenizer`."""

    im_end_id: int

    def encode(self, text: str) -> list[int]: ...

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]: ...


@dataclass(frozen=True)
class TrainingSample:
    """One feedback event as a training sample. The prompt is either the chat's messages,
    `(role, text)` pairs rendered with the chat template, or token ids already rendered."""

    target: str
    kind: SampleKind
    messages: tuple[tuple[str, str], ...] = ()
    prompt_ids: tuple[int, ...] | None = None
    weight: float = 1.0
    alternative: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (PREFERRED, UNDESIRABLE):
            raise ValueError(f"sample kind must be preferred or undesirable, got {self.kind!r}")
        if bool(self.messages) == (self.prompt_ids is not None):
            raise ValueError("a sample needs exactly one of messages and prompt_ids")
        if self.prompt_ids is not None and not self.prompt_ids:
            raise ValueError("prompt_ids is empty")
        if not self.target:
            raise ValueError("a sample needs a non-empty target")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"sample weight must be a finite number >= 0, got {self.weight}")

    def prompt(self, tokenizer: ChatEncoder) -> list[int]:
        if self.prompt_ids is not None:
            return list(self.prompt_ids)
        return tokenizer.encode_chat([ChatMessage(role, text) for role, text in self.messages])

    def ranked_texts(self) -> tuple[str, str] | None:
        """(the text the user prefers, the one they do not) for the alignment measure: a
        preferred target over its alternative, the alternative over an undesirable target;
        None without an alternative."""
        if self.alternative is None:
            return None
        if self.kind == PREFERRED:
            return self.target, self.alternative
        return self.alternative, self.target


@dataclass(frozen=True)
class EncodedText:
    """Prompt then target tokens; the target starts at `target_start`."""

    ids: tuple[int, ...]
    target_start: int
    truncated: bool

    @property
    def target_tokens(self) -> int:
        return len(self.ids) - self.target_start


def encode_text(
    prompt: Sequence[int], text: str, tokenizer: ChatEncoder, *, max_tokens: int
) -> EncodedText:
    """`text` as the answer to `prompt`, ended by `<|im_end|>`, in at most `max_tokens`: the
    prompt is cut from the left (keeping at least its last `MIN_PROMPT_TOKENS`); a target that
    still does not fit is cut at its end, and so loses its `<|im_end|>` (the answer did not end
    there)."""
    if max_tokens < MIN_PROMPT_TOKENS + 1:
        raise ValueError(f"max_tokens must be above {MIN_PROMPT_TOKENS}")
    if not prompt:
        raise ValueError("empty prompt")
    target = [*tokenizer.encode(text), tokenizer.im_end_id]
    keep_prompt, keep_target = len(prompt), len(target)
    if keep_prompt + keep_target > max_tokens:
        keep_prompt = max(max_tokens - keep_target, min(keep_prompt, MIN_PROMPT_TOKENS))
        keep_target = max_tokens - keep_prompt
    ids = (*prompt[len(prompt) - keep_prompt :], *target[:keep_target])
    truncated = keep_prompt < len(prompt) or keep_target < len(target)
    return EncodedText(ids=ids, target_start=keep_prompt, truncated=truncated)


def encode_sample(
    sample: TrainingSample, tokenizer: ChatEncoder, *, max_tokens: int
) -> EncodedText:
    return encode_text(sample.prompt(tokenizer), sample.target, tokenizer, max_tokens=max_tokens)


def sequence_length(texts: Sequence[EncodedText], *, max_tokens: int) -> int:
    """The padded length of every batch of a run: a power of two (at least 32) that holds the
    longest input, at most `max_tokens`. One length per run means one compiled step, and
    powers of two mean few shapes across runs (the persistent compilation cache keeps them)."""
    longest = max(len(text.ids) - 1 for text in texts)  # the last token is only a label
    length = MIN_SEQUENCE_LENGTH
    while length < longest:
        length *= 2
    return min(length, max_tokens)


@dataclass(frozen=True)
class Rows:
    """Padded model inputs for a batch of texts. Position p of a row predicts `labels[p]`;
    `mask[p]` is 1 where that label is a target token. Rows past the texts are padding."""

    tokens: np.ndarray  # int32 [B, T]
    labels: np.ndarray  # int32 [B, T]
    mask: np.ndarray  # float32 [B, T]


def pack_rows(texts: Sequence[EncodedText], *, batch_size: int, length: int) -> Rows:
    if len(texts) > batch_size:
        raise ValueError(f"{len(texts)} texts for a batch of {batch_size}")
    tokens = np.zeros((batch_size, length), np.int32)
    labels = np.zeros((batch_size, length), np.int32)
    mask = np.zeros((batch_size, length), np.float32)
    for row, text in enumerate(texts):
        ids = np.asarray(text.ids, np.int32)
        inputs = len(ids) - 1
        if inputs > length:
            raise ValueError(f"a text of {len(ids)} tokens does not fit length {length}")
        tokens[row, :inputs] = ids[:-1]
        labels[row, :inputs] = ids[1:]
        # The label at position p is token p + 1: a target token from target_start on.
        mask[row, text.target_start - 1 : inputs] = 1.0
    return Rows(tokens=tokens, labels=labels, mask=mask)


def batches(count: int, batch_size: int, order: np.ndarray) -> list[np.ndarray]:
    """Indices of each batch of one pass, in `order`; the last batch may be short."""
    return [order[start : start + batch_size] for start in range(0, count, batch_size)]
