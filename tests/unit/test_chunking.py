"""Token-window chunking (`shared.domain.rag.chunking`): windows in the encoder's tokens with
overlap, offsets that point back into the document, breaks at paragraphs and sentences,
headings."""

from __future__ import annotations

import itertools
import re

import pytest

from shared.domain.rag.chunking import (
    Heading,
    check_window,
    chunk_text,
    markdown_headings,
    minilm_offsets,
)


def words(text: str) -> list[tuple[int, int]]:
    """One token per whitespace-separated word: easy to reason about in tests."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def test_windows_overlap_and_cover_every_token() -> None:
    text = " ".join(f"w{i}" for i in range(1000))
    chunks = chunk_text(text, words, size=100, overlap=20)
    assert [c.token_count for c in chunks[:-1]] == [100] * (len(chunks) - 1)
    for before, after in itertools.pairwise(chunks):
        shared = set(before.text.split()) & set(after.text.split())
        assert len(shared) == 20
    covered = set().union(*(c.text.split() for c in chunks))
    assert covered == set(text.split())
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_a_window_ends_at_a_paragraph_or_sentence_when_it_can() -> None:
    paragraph = " ".join(f"w{i}" for i in range(90)) + "."
    text = paragraph + "\n\n" + paragraph.replace("w", "v")
    first = chunk_text(text, words, size=100, overlap=10)[0]
    assert first.text == paragraph  # 91 tokens: ended at the paragraph, not at token 100
    sentences = " ".join(f"s{i}." if i % 30 == 29 else f"s{i}" for i in range(300))
    first = chunk_text(sentences, words, size=100, overlap=10)[0]
    assert first.text.endswith("s89.") and first.token_count == 90


def test_without_a_break_nearby_the_window_is_cut_at_its_size() -> None:
    text = " ".join(f"w{i}" for i in range(300))
    assert chunk_text(text, words, size=64, overlap=0)[0].token_count == 64


def test_markdown_headings_give_each_chunk_its_section_path() -> None:
    text = (
        "# Guide\nintro words here\n\n## Install\n"
        + "install words " * 60
        + "\n\n```\n# not a heading\n```\n\n### On Linux\n"
        + "linux words " * 60
    )
    headings = markdown_headings(text)
    assert [h.path for h in headings] == ["Guide", "Guide > Install", "Guide > Install > On Linux"]
    chunks = chunk_text(text, words, size=64, overlap=8, headings=headings)
    assert chunks[0].heading == "Guide"
    assert chunks[-1].heading == "Guide > Install > On Linux"
    assert any(c.heading == "Guide > Install" for c in chunks)


def test_a_sibling_heading_replaces_its_level() -> None:
    text = "# A\n## B\ntext\n## C\ntext\n# D\n"
    assert [h.path for h in markdown_headings(text)] == ["A", "A > B", "A > C", "D"]


def test_text_before_the_first_heading_has_none() -> None:
    chunks = chunk_text("preface\n\n# Title\nbody", words, size=64, overlap=0,
                        headings=[Heading(9, "Title")])  # fmt: skip
    assert chunks[0].heading is None


@pytest.mark.parametrize(("size", "overlap"), [(63, 0), (4001, 0), (100, 51), (100, -1)])
def test_window_settings_are_bounded(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        check_window(size, overlap)


def test_empty_text_has_no_chunks() -> None:
    assert chunk_text("   \n", words) == []


def test_the_encoder_tokenizer_counts_and_offsets_wordpieces() -> None:
    """With the real MiniLM tokenizer: counts are WordPieces, offsets map back to the text."""
    text = "Tokenization splits uncommon words into WordPieces. " * 120
    chunks = chunk_text(text, minilm_offsets(), size=128, overlap=16)
    assert len(chunks) > 1 and all(c.token_count <= 128 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert sum(c.token_count for c in chunks) > len(text.split())  # sub-word pieces
