"""`llm.intent_classifier_v1` (shared.domain.tools.intent) with a small fake backend: deterministic
vectors (a table, else a hashed bag of words) and scripted chat answers."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from shared.domain.llm.backend import (
    AdapterUse,
    Completion,
    Delta,
    GenerationParams,
    Message,
    TokenCount,
    Usage,
)
from shared.domain.tools.base import ToolContext
from shared.domain.tools.intent import (
    INTENTS_FILE,
    Intent,
    IntentClassifier,
    IntentSet,
    classify_intent,
    knn_scores,
    message_head,
    parse_choice,
)
from shared.platform.errors import Unavailable, ValidationError

DIM = 64
EVAL_SET = Path(__file__).resolve().parents[1] / "data" / "intents_eval.jsonl"


class FakeBackend:
    """Embeds a text as `table[text]` where given, else as a hashed bag of its words; answers
    chat calls with `answers` in turn (an exception is raised instead of answered)."""

    def __init__(
        self,
        table: dict[str, list[float]] | None = None,
        answers: Sequence[str | Exception] = (),
    ) -> None:
        self.table = table or {}
        self.answers = list(answers)
        self.embedded: list[list[str]] = []
        self.prompts: list[tuple[list[Message], GenerationParams]] = []

    def _vector(self, text: str) -> list[float]:
        if text in self.table:
            return [*self.table[text], *[0.0] * (DIM - len(self.table[text]))]
        vector = [0.0] * DIM
        for word in re.findall(r"[a-z]+", text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
        return vector

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.append(list(texts))
        return [self._vector(t) for t in texts]

    async def complete(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> Completion:
        self.prompts.append((list(messages), params))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Completion(text=answer, finish_reason="stop", usage=Usage(), request_id=request_id)

    async def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> AsyncIterator[Delta]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount:
        return TokenCount(count=0, context_window=8192)

    async def cancel(self, request_id: str) -> bool:
        return False

    async def aclose(self) -> None:
        return None


def unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


# Two intents on two axes; a message's angle between them sets the margin.
TWO = IntentSet(
    labels={
        "alpha": Intent("alpha", "about the first thing", ("a1", "a2")),
        "beta": Intent("beta", "about the second thing", ("b1", "b2")),
    },
    top_k=3,
    margin=0.05,
)
AXES = {"a1": [1.0, 0.0], "a2": [1.0, 0.0], "b1": [0.0, 1.0], "b2": [0.0, 1.0]}


def two_axes(message: str, x: float, y: float, answers: Sequence[str | Exception] = ()):
    return FakeBackend({**AXES, message: unit(x, y)}, answers)


# --- kNN scoring -----------------------------------------------------------------------------
def test_a_label_scores_the_mean_of_its_three_nearest_exemplars() -> None:
    message = [1.0, 0.0]
    exemplars = {
        "many": [[0.9, 0.1], [0.6, 0.8], [0.3, 0.95], [-1.0, 0.0]],  # best three: .9 .6 .3
        "few": [[0.5, 0.5]],  # fewer than k: the mean of what it has
    }
    scores = knn_scores([message], exemplars, top_k=3)
    assert scores["many"] == pytest.approx(0.6)
    assert scores["few"] == pytest.approx(0.5)
    # Two views of one message (whole and head): their scores are averaged.
    both = knn_scores([message, [0.0, 1.0]], exemplars, top_k=1)
    assert both["many"] == pytest.approx((0.9 + 0.95) / 2)


async def test_a_clear_winner_is_the_embeddings_answer_without_asking_the_llm() -> None:
    backend = two_axes("mostly alpha", 1.0, 0.2)
    result = await IntentClassifier(TWO).classify("mostly alpha", backend)
    assert result["intent"] == "alpha" and result["method"] == "embedding"
    assert 0.5 < result["confidence"] <= 1.0
    assert backend.prompts == []


async def test_classify_many_embeds_the_messages_in_one_batch() -> None:
    backend = FakeBackend({**AXES, "m1": [1.0, 0.1], "m2": [0.1, 1.0]})
    results = await IntentClassifier(TWO).classify_many(["m1", "m2"], backend)
    assert [r["intent"] for r in results] == ["alpha", "beta"]
    assert sorted(map(len, backend.embedded)) == [2, 4]  # the messages, then the exemplars


# --- the LLM tie-break -----------------------------------------------------------------------
async def test_a_close_call_goes_to_the_llm_which_may_pick_the_runner_up() -> None:
    backend = two_axes("torn", 1.0, 0.97, answers=["beta"])
    result = await IntentClassifier(TWO).classify("torn", backend, request_id="req-1")
    assert result == {"intent": "beta", "confidence": result["confidence"], "method": "llm"}
    assert 0.0 < result["confidence"] < 0.5  # the embedding leaned the other way
    (messages, params), *_ = backend.prompts
    assert params.temperature == 0 and params.max_tokens <= 8
    prompt = "\n".join(m.content for m in messages)
    assert "about the first thing" in prompt and "about the second thing" in prompt
    assert messages[-1] == Message("user", "torn")
    assert {m.content for m in messages if m.role == "assistant"} == {"alpha", "beta"}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("Alpha", "alpha"), (" beta.", "beta"), ("It is alpha, not beta", "alpha")],
)
async def test_the_llm_answer_is_parsed_to_a_candidate(answer: str, expected: str) -> None:
    backend = two_axes("torn", 0.97, 1.0, answers=[answer])
    result = await IntentClassifier(TWO).classify("torn", backend)
    assert result["intent"] == expected and result["method"] == "llm"


@pytest.mark.parametrize("answer", ["gamma", "", "I cannot tell", Unavailable("down")])
async def test_without_a_usable_llm_answer_the_embedding_winner_stands(
    answer: str | Exception,
) -> None:
    backend = two_axes("torn", 1.0, 0.97, answers=[answer])
    result = await IntentClassifier(TWO).classify("torn", backend)
    assert result["intent"] == "alpha" and result["method"] == "embedding"
    assert len(backend.prompts) == 1


def test_parse_choice() -> None:
    labels = ("code_edit", "analysis")
    assert parse_choice("code_edit", labels) == "code_edit"
    assert parse_choice("Code edit", labels) == "code_edit"
    assert parse_choice("CODE-EDIT!", labels) == "code_edit"
    assert parse_choice("analysis, then code_edit", labels) == "analysis"
    assert parse_choice("code", labels) is None
    assert parse_choice("psychoanalysis", labels) is None
    assert parse_choice("edit", ("edit", "code_edit")) == "edit"
    assert parse_choice("code_edit", ("edit", "code_edit")) == "code_edit"


# --- labels from the workflow ----------------------------------------------------------------
CUSTOM = {
    "billing": {
        "description": "invoices and payments",
        "examples": ["refund my invoice payment", "charged twice on my card"],
    },
    "weather": {"description": "rain sunshine forecast temperature tomorrow"},
}


async def test_a_workflow_can_bring_its_own_intents() -> None:
    classifier = IntentClassifier()
    backend = FakeBackend()
    refund = await classifier.classify("please refund this payment", backend, labels=CUSTOM)
    rain = await classifier.classify("will it rain tomorrow", backend, labels=CUSTOM)
    assert refund["intent"] == "billing" and rain["intent"] == "weather"
    # A label without examples is represented by its description.
    assert "rain sunshine forecast temperature tomorrow" in backend.embedded[1]


def test_labels_select_a_subset_of_the_built_ins_or_mix_them() -> None:
    builtin = IntentSet.load()
    subset = builtin.select(["chitchat", "code_edit"])
    assert list(subset.labels) == ["chitchat", "code_edit"]
    assert subset.labels["chitchat"] == builtin.labels["chitchat"]
    assert subset.margin == builtin.margin
    mixed = builtin.select({"chitchat": None, **CUSTOM})
    assert list(mixed.labels) == ["chitchat", "billing", "weather"]


@pytest.mark.parametrize(
    "labels",
    [
        ["chitchat"],  # one label is no choice
        ["chitchat", "no_such_builtin"],
        {"a": {"description": "x"}, "b bad name": {"description": "y"}},
        {"a": {"description": "x"}, "b": {"examples": "not a list"}},
        {"a": {"description": "x"}, "b": {"examples": ["ok", ""]}},
        {"a": {"description": "x"}, "b": {}},
        {"a": {"description": "x"}, "b": {"examples": ["e"] * 33}},
        "chitchat",
    ],
)
def test_bad_labels_are_refused(labels: object) -> None:
    with pytest.raises(ValidationError):
        IntentSet.load().select(labels)


# --- limits ----------------------------------------------------------------------------------
async def test_long_messages_are_cut_and_also_seen_by_their_head() -> None:
    intents = IntentSet(
        labels=TWO.labels, margin=1.0, max_message_chars=300, max_prompt_chars=100, head_words=5
    )
    message = "Summarize this please: " + "word " * 2000
    backend = FakeBackend(AXES, answers=["alpha"])
    await IntentClassifier(intents).classify(message, backend)
    texts = backend.embedded[0]
    assert len(texts) == 2 and all(len(t) <= 300 for t in texts)
    assert texts[1] == message_head(message, 5) == "Summarize this please: word word"
    (messages, _), *_ = backend.prompts
    assert len(messages[-1].content) <= 100


async def test_a_short_message_is_embedded_once_and_blank_ones_are_refused() -> None:
    backend = FakeBackend({**AXES, "hello": [1.0, 0.0]})
    await IntentClassifier(TWO).classify("hello", backend)
    assert backend.embedded[0] == ["hello"]
    with pytest.raises(ValidationError):
        await IntentClassifier(TWO).classify("  \n ", backend)


async def test_exemplar_vectors_are_embedded_once_per_backend() -> None:
    classifier, first, second = IntentClassifier(TWO), FakeBackend(AXES), FakeBackend(AXES)
    for text in ("a1", "b1"):
        await classifier.classify(text, first)
    await classifier.classify("a1", second)
    assert first.embedded == [["a1"], ["a1", "a2", "b1", "b2"], ["b1"]]
    assert second.embedded == [["a1"], ["a1", "a2", "b1", "b2"]]


# --- the tool entry point and the built-in intents -------------------------------------------
async def test_the_tool_reads_its_inputs_from_the_workflow() -> None:
    ctx = ToolContext(user_id="u", request_id="r", backend=FakeBackend())
    result = await classify_intent(
        {"message": "charged twice on my card, refund", "labels": CUSTOM}, ctx
    )
    assert set(result) == {"intent", "confidence", "method"} and result["intent"] == "billing"
    with pytest.raises(ValidationError):
        await classify_intent({"message": 42}, ctx)


def test_the_built_in_intents() -> None:
    intents = IntentSet.load()
    assert list(intents.labels) == [
        "factual_question",
        "code_edit",
        "creative_writing",
        "summarize",
        "chitchat",
        "analysis",
    ]
    for intent in intents.labels.values():
        assert 6 <= len(intent.examples) <= 10 and "\n" not in intent.description
    assert 0 < intents.margin < 0.2 and intents.top_k == 3
    assert json.loads(INTENTS_FILE.read_text())["version"] == 1


def test_no_evaluation_message_shares_a_phrase_with_an_exemplar() -> None:
    """The evaluation set measures generalisation, so no four-word run of an exemplar may
    appear in an evaluation message."""

    def runs(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9']+", text.lower())
        return {tuple(words[i : i + 4]) for i in range(len(words) - 3)}

    intents = IntentSet.load().labels.values()
    exemplars = set().union(*(runs(e) for intent in intents for e in intent.examples))
    rows = [json.loads(line) for line in EVAL_SET.read_text().splitlines() if line.strip()]
    shared = {row["text"]: runs(row["text"]) & exemplars for row in rows}
    assert {text: found for text, found in shared.items() if found} == {}
