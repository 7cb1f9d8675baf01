"""Small pieces of files/RAG without services: names, the size cap of a streamed object,
reciprocal-rank fusion, fitting sources into the window, citations."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.domain.files.names import checked_kind, object_key, sanitize_name
from shared.domain.files.upload import ObjectSink
from shared.domain.llm.backend import Completion, GenerationParams, Message, TokenCount, Usage
from shared.domain.rag.retrieval import Hit, fuse
from shared.domain.tools.base import ToolContext
from shared.domain.tools.grounded import (
    NO_EVIDENCE,
    answer_with_context,
    cited_numbers,
    claim_citing,
    fit_sources,
    sentences,
    supporting_quote,
)
from shared.platform.errors import PayloadTooLarge, ValidationError

USER = "00000000-0000-4000-8000-000000000001"
FILE = "00000000-0000-4000-8000-000000000002"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("../../etc/passwd.md", "passwd.md"), ("..\\..\\win.ini.txt", "win.ini.txt"),
     (".hidden.md", "hidden.md"), ("a b;rm -rf $(x).md", "a b_rm -rf _(x).md"),
     ("notes\x00.md", "notes_.md")],
)  # fmt: skip
def test_names_become_one_safe_segment(raw: str, safe: str) -> None:
    assert sanitize_name(raw) == safe
    assert object_key(USER, FILE, safe) == f"users/{USER}/files/{FILE}/{safe}"


def test_long_names_keep_their_extension_and_empty_names_are_refused() -> None:
    name = sanitize_name("x" * 500 + ".md")
    assert len(name) == 160 and name.endswith(".md")
    with pytest.raises(ValidationError):
        sanitize_name("../..")
    with pytest.raises(ValueError):
        object_key(USER, FILE, "../escape.md")
    with pytest.raises(ValueError):
        object_key("not-a-uuid", FILE, "a.md")


def test_only_parseable_types_are_allowed() -> None:
    assert checked_kind("a.PDF") == "pdf"
    with pytest.raises(ValidationError) as refused:
        checked_kind("setup.exe")
    assert ".pdf" in refused.value.details["allowed_extensions"]


def test_a_streamed_object_stops_at_its_cap() -> None:
    sink = ObjectSink(s3=None, bucket="b", key="k", content_type="text/plain", max_bytes=10)
    sink.feed(b"12345")
    with pytest.raises(PayloadTooLarge):
        sink.feed(b"678901")
    assert sink.size == 11


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    scores = fuse([[1, 2, 3], [3, 4]], k=60)
    assert max(scores, key=lambda c: scores[c]) == 3  # in both lists
    assert scores[1] > scores[2] == scores[4]  # the same rank in one list each
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)


def test_cited_numbers_keep_valid_marks_or_cite_everything() -> None:
    assert cited_numbers("It is 100 m [2], see [2] and [9].", 3) == [2]
    assert cited_numbers("No marks here.", 3) == [1, 2, 3]


def hit(n: int, text: str, similarity: float = 0.8) -> Hit:
    return Hit(str(n), "ctx", "src", f"file-{n}", f"doc{n}.md", 0, text, None, None, 0,
               len(text), similarity=similarity, score=1 / (60 + n))  # fmt: skip


class CountingBackend:
    """Counts one token per word, in a window of `window` tokens."""

    def __init__(self, window: int, answer: str = "It is 100 metres [1]."):
        self.window, self.answer, self.prompts = window, answer, []
        self.params: list[GenerationParams] = []

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount:
        return TokenCount(sum(len(m.content.split()) for m in messages), self.window)

    async def complete(self, messages, params, *, request_id=None, adapters=()):
        self.prompts.append(messages)
        self.params.append(params)
        return Completion(text=self.answer, finish_reason="stop", usage=Usage(10, 5))


class FakeRetriever:
    def __init__(self, hits: list[Hit]):
        self.hits = hits

    async def search(self, user_id, context_ids, query, *, k):
        return self.hits[:k]


def context(backend, hits, **extras) -> ToolContext:
    return ToolContext(
        user_id=USER, request_id="r", backend=backend, stream=False,  # type: ignore[arg-type]
        history=[Message("user", "earlier " * 50), Message("assistant", "reply " * 50)],
        extras={"generation": GenerationParams(max_tokens=20), "retriever": FakeRetriever(hits),
                "rag": {"top_k": 5, "min_similarity": 0.3}, **extras},
    )  # fmt: skip


def test_sources_are_fitted_history_first_then_the_weakest() -> None:
    hits = [hit(i, " ".join(f"w{i}" for _ in range(60))) for i in range(1, 4)]
    backend = CountingBackend(window=200)
    messages, kept = asyncio.run(fit_sources(context(backend, hits), "how tall?", hits))
    assert [m.role for m in messages] == ["system", "user"]  # history went first
    total = sum(len(m.content.split()) for m in messages)
    assert total <= 200 - 20 and 1 <= kept < 3
    assert "[1] doc1.md" in messages[-1].content


def test_no_evidence_means_no_citation_and_no_model_call() -> None:
    backend = CountingBackend(window=2000)
    weak = [hit(1, "unrelated text", similarity=0.1)]
    done = asyncio.run(answer_with_context({"question": "q", "contexts": ["c"]},
                                           context(backend, weak)))  # fmt: skip
    assert done == {"answer": NO_EVIDENCE, "citations": [], "finish_reason": "no_evidence"}
    assert backend.prompts == []


def test_a_grounded_answer_cites_what_it_marked() -> None:
    backend = CountingBackend(window=2000)
    hits = [hit(1, "The Pharos stood about 100 metres tall."), hit(2, "Other facts.")]
    done = asyncio.run(answer_with_context({"question": "How tall?", "contexts": ["c"]},
                                           context(backend, hits)))  # fmt: skip
    assert [c["source_id"] for c in done["citations"]] == ["file-1"]
    assert done["citations"][0]["chunk_id"] == "1" and done["citations"][0]["path"] == "doc1.md"
    assert "[2] doc2.md" in backend.prompts[0][-1].content


PHAROS = ("The lighthouse stood on the island of Pharos.\nIt was about 100 metres tall,\none of "
          "the tallest structures of its age. Earthquakes damaged it.")  # fmt: skip


def test_a_grounded_answer_quotes_the_supporting_sentence_and_decodes_copy_aware() -> None:
    backend = CountingBackend(window=2000, answer="It was about 100 metres tall [1].")
    hits = [hit(1, PHAROS), hit(2, "Other facts.")]
    done = asyncio.run(answer_with_context({"question": "How tall?", "contexts": ["c"]},
                                           context(backend, hits)))  # fmt: skip
    [cited] = done["citations"]
    assert cited["quote"] == (
        "It was about 100 metres tall,\none of the tallest structures of its age."
    )
    assert cited["quote"] in PHAROS  # verbatim, line break and all
    assert backend.params[0].copy_from == (PHAROS, "Other facts.")
    assert backend.params[0].max_tokens == 20  # the configured generation, plus the sources


def test_copy_aware_decoding_can_be_turned_off() -> None:
    backend = CountingBackend(window=2000)
    rag = {"top_k": 5, "min_similarity": 0.3, "copy_aware": False}
    asyncio.run(answer_with_context({"question": "How tall?", "contexts": ["c"]},
                                    context(backend, [hit(1, PHAROS)], rag=rag)))  # fmt: skip
    assert backend.params[0].copy_from == ()


def test_sentences_keep_the_passage_verbatim() -> None:
    assert sentences(PHAROS) == [
        "The lighthouse stood on the island of Pharos.",
        "It was about 100 metres tall,\none of the tallest structures of its age.",
        "Earthquakes damaged it.",
    ]
    assert sentences("Heading\n\nBody text. More") == ["Heading", "Body text.", "More"]


def test_the_quote_is_the_sentence_sharing_most_words_with_the_claim() -> None:
    assert supporting_quote(PHAROS, "Earthquakes damaged the lighthouse [1].") == (
        "Earthquakes damaged it."  # two shared words beat one ("lighthouse")
    )
    assert supporting_quote(PHAROS, "The island was Pharos.").startswith("The lighthouse")
    assert supporting_quote(PHAROS, "Something else entirely.") is None
    # Stopwords and citation marks do not count as support.
    assert supporting_quote(PHAROS, "it is the [1] of a") is None


def test_the_claim_of_a_citation_is_what_the_answer_marks_with_it() -> None:
    answer = "It was 100 metres tall [1]. Earthquakes damaged it [2].\nIt stood on Pharos. [1]"
    assert claim_citing(answer, 1) == "It was 100 metres tall [1]. It stood on Pharos. [1]"
    assert claim_citing(answer, 2) == "Earthquakes damaged it [2]."
    assert claim_citing("No marks at all.", 1) == "No marks at all."
