"""What the voice service speaks: markdown read aloud, cut into sentences; and the WER metric
the voice tests and benchmark report."""

from __future__ import annotations

import pytest

from bench.wer import wer
from functions.voice_engine.text import MAX_PIECE_CHARS, sentences


def test_sentences_split_on_ends_and_lines():
    text = "Hello there. How are you?\nFine! Thanks; really"
    assert sentences(text) == ["Hello there.", "How are you?", "Fine!", "Thanks;", "really"]


def test_markdown_is_read_not_spelled():
    text = "**Bold** and `code` with a [link](https://example.com) [1].\n- a bullet\n# Title"
    assert sentences(text) == ["Bold and code with a link .", "a bullet", "Title"]


def test_urls_and_code_blocks_are_summarised():
    spoken = " ".join(sentences("See https://x.org/a?b=1 now.\n```py\nprint(1)\n```\nDone."))
    assert "https" not in spoken and "print" not in spoken
    assert "a link" in spoken and "code omitted" in spoken


def test_long_sentences_are_cut_at_commas_and_spaces():
    long = ", ".join(f"clause number {i} of a very long sentence" for i in range(40)) + "."
    pieces = sentences(long)
    assert len(pieces) > 1
    assert all(len(p) <= MAX_PIECE_CHARS for p in pieces)
    assert " ".join(pieces).replace(" ,", ",") == long


def test_no_words_no_pieces_and_no_control_characters():
    assert sentences("... --- \x00\x07") == []
    assert all("\n" not in p and "\x1b" not in p for p in sentences("a\x1b[31mb. c\rd"))


def test_wer_counts_edits_over_reference_words():
    assert wer("The cat sat on the mat.", "the cat sat on the mat") == 0
    assert wer("the cat sat", "the bat sat down") == pytest.approx(2 / 3)
    assert wer("one two three four", "one three four") == pytest.approx(1 / 4)
    with pytest.raises(ValueError):
        wer("...", "anything")
