"""Copy-aware decoding for grounded answers: names, numbers and terms being copied from the
sources continue exactly as they do there.

A small model quoting "Marrowdale" from its context may write " Mar" + "ad" + "ale": each piece
was likely, the word is wrong. A single-token logit bias cannot fix that (the name is several
tokens, and which ones depends on what came before), so the processor reads the answer so far:

- An index maps every n-gram of the sources' token ids (n = 1..MAX_MATCH) to the tokens that
  follow it there. It is built once per request (milliseconds for a few thousand tokens).
- Each token, the longest suffix of the answer found in the sources is looked up. It counts only
  when it is specific: at most MAX_BRANCHES different tokens follow it there, and a one-token
  suffix is rare there (a name's first piece, not " the").
- Inside a word (the source's next piece continues the word: "row" after " Mar", the next digit
  of a number) a different piece is a misquote: the source's piece is forced unless the model is
  much surer of its own (MIN_RATIO_IN_WORD), as it is when " Mar" starts "March". A model that
  ends the word there (its choice is a piece the sources use to begin words: a space, a full
  stop) is left to do so: "1." is not made into "100.".
- Between words the model decides: a copy ends where the answer wants to cite, stop or go on in
  its own words. The processor only keeps sampling on the source's next word when that word is
  already the model's own choice (greedy decoding is then unchanged).
- Free text (no suffix in the sources) is untouched, and so is the row whenever nothing applies.

Which pieces begin a word comes with the sources: `copy_from` holds the sources' token ids with
WORD_START before each piece that begins a word and SEPARATOR between two sources (no n-gram
spans two). `source_ids` builds it from texts with the model's tokenizer.

The cost per token is MAX_MATCH dict look-ups and one max over the row, on the host.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from shared.neural.sampling import LogitsProcessor

SEPARATOR = -1
WORD_START = -2
MAX_MATCH = 6
# A suffix followed by more different tokens than this says too little about what comes next;
# a one-token suffix must also occur at most MAX_OCCURRENCES times.
MAX_BRANCHES = 2
MAX_OCCURRENCES = 3
# Inside a word, the source's piece is taken unless it is this much less likely (a probability
# ratio) than the model's choice: a model 10 times surer of another piece writes another word.
MIN_RATIO_IN_WORD = 0.1
# Added over the row's maximum so a forced token wins whatever the temperature.
FORCE_MARGIN = 50.0


class CopyIndex:
    """The sources' n-grams (up to MAX_MATCH tokens), what follows each, and which of the
    following pieces begin a word."""

    def __init__(self, copy_from: Sequence[int], max_match: int = MAX_MATCH):
        self.max_match = max_match
        self.follows: dict[tuple[int, ...], Counter[int]] = {}
        self.word_starts: set[int] = set()
        segment: list[int] = []
        starts_word = False
        for token in [*copy_from, SEPARATOR]:
            if token == WORD_START:
                starts_word = True
                continue
            if token == SEPARATOR:
                self._add(segment)
                segment = []
            else:
                segment.append(int(token))
                if starts_word:
                    self.word_starts.add(int(token))
            starts_word = False

    def _add(self, tokens: list[int]) -> None:
        for end in range(1, len(tokens)):  # tokens[end] follows each n-gram ending before it
            nxt = tokens[end]
            for n in range(1, min(self.max_match, end) + 1):
                self.follows.setdefault(tuple(tokens[end - n : end]), Counter())[nxt] += 1

    def match(self, generated: Sequence[int]) -> tuple[int, Counter[int]] | None:
        """(length, continuations) of the longest suffix of `generated` found in the sources."""
        for n in range(min(self.max_match, len(generated)), 0, -1):
            continuations = self.follows.get(tuple(generated[-n:]))
            if continuations is not None:
                return n, continuations
        return None


def specific(match_length: int, continuations: Counter[int]) -> bool:
    """Whether the sources say what comes after a suffix (see MAX_BRANCHES)."""
    if len(continuations) > MAX_BRANCHES:
        return False
    return match_length > 1 or sum(continuations.values()) <= MAX_OCCURRENCES


def copy_processor(copy_from: tuple[int, ...]) -> LogitsProcessor:
    """A processor (row of logits [V], tokens generated so far) -> row of logits that keeps a
    span being copied from `copy_from` exact (see the module docstring)."""
    index = CopyIndex(copy_from)
    in_word_gap = math.log(MIN_RATIO_IN_WORD)

    def process(logits: np.ndarray, generated: Sequence[int]) -> np.ndarray:
        found = index.match(generated)
        if found is None or not specific(*found):
            return logits
        vocab = logits.shape[0]
        candidates = [t for t in found[1] if t < vocab]
        if not candidates:
            return logits
        best = max(candidates, key=lambda t: float(logits[t]))
        choice = int(np.argmax(logits))
        top = float(logits[choice])
        gap = float(logits[best]) - top  # <= 0: the log of its probability ratio to the top's
        if best in index.word_starts or choice in index.word_starts:
            if gap < 0.0:  # between words, or the model ends the word: its call
                return logits
        elif gap < in_word_gap:
            return logits
        out = np.array(logits, dtype=np.float32, copy=True)
        out[best] = top + FORCE_MARGIN
        return out

    return process


def starts_word(piece: str) -> bool:
    """Whether a token's text begins a word: a space, or punctuation (not a letter, digit,
    underscore or apostrophe, which go on with the word before; nor a partial UTF-8 byte)."""
    if not piece:
        return False
    first = piece[0]
    return first.isspace() or not (first.isalnum() or first in "_'\ufffd")


def word_start_mask(decode: Callable[[Sequence[int]], str], vocab_size: int) -> np.ndarray:
    """[V] booleans: which token ids begin a word (computed once per tokenizer)."""
    return np.fromiter((starts_word(decode([i])) for i in range(vocab_size)), bool, vocab_size)


def source_ids(
    texts: Iterable[str], encode: Callable[[str], list[int]], word_starts: np.ndarray
) -> tuple[int, ...]:
    """`copy_from` for texts: each one's whitespace collapsed (an answer quotes a wrapped
    passage as running text, and a word at a line's start is tokenized without its space),
    encoded, WORD_START before each piece that begins a word, SEPARATOR between texts."""
    out: list[int] = []
    for text in texts:
        squashed = " ".join(text.split())
        if not squashed:
            continue
        if out:
            out.append(SEPARATOR)
        for token in encode(" " + squashed):  # a leading space: as a word inside an answer
            if token < word_starts.shape[0] and word_starts[token]:
                out.append(WORD_START)
            out.append(token)
    return tuple(out)
