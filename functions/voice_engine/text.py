"""Text for speaking: markdown read as a person would say it, cut into sentences.

Synthesis goes sentence by sentence so the first audio leaves after the first sentence, not
after the whole answer."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```.*?(```|$)", re.S)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_CITATION = re.compile(r"\[(?:\d+(?:,\s*)?)+\]")  # [1], [2, 3]: markers, not words
_MARKUP = re.compile(r"[*_`#>|~]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
# A sentence longer than this is cut at a comma or a space: Piper's latency grows with it.
MAX_PIECE_CHARS = 300


def speakable(text: str) -> str:
    text = _FENCE.sub(" code omitted. ", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("a link", text)
    text = _CITATION.sub("", text)
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", text, flags=re.M)  # list bullets
    text = _MARKUP.sub(" ", text)
    return text


def sentences(text: str) -> list[str]:
    """The pieces to synthesise, each one line without control characters."""
    pieces: list[str] = []
    for raw in _SENTENCE_END.split(speakable(text)):
        sentence = " ".join(_CONTROL.sub(" ", raw).split())
        while len(sentence) > MAX_PIECE_CHARS:
            cut = sentence.rfind(", ", 0, MAX_PIECE_CHARS)
            cut = cut + 1 if cut > 0 else sentence.rfind(" ", 0, MAX_PIECE_CHARS)
            cut = cut if cut > 0 else MAX_PIECE_CHARS
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if any(c.isalnum() for c in sentence):
            pieces.append(sentence)
    return pieces
