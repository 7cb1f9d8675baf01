"""The retrieval evaluation set (`bench.rag_eval_set`): hand-written questions over the Python
Language Reference topics that ship with CPython (`pydoc_data.topics`)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import pytest

from bench.rag_eval_set import (
    DEFAULT_PATH,
    EvalQuestion,
    check,
    load_corpus,
    load_key_phrases,
    load_no_evidence,
    load_questions,
    relevant,
    squash,
)


@pytest.fixture(scope="module")
def questions() -> list[EvalQuestion]:
    return load_questions()


def test_the_corpus_is_the_reference_topics_sorted_by_name() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 70
    assert list(corpus) == sorted(corpus)
    assert "assignment" in corpus
    assert "break" in corpus["break"]


def test_the_set_is_big_and_spread_out(questions: list[EvalQuestion]) -> None:
    assert DEFAULT_PATH.is_file()
    assert len(questions) >= 110
    per_topic = Counter(q.topic for q in questions)
    assert len(per_topic) >= 40
    assert max(per_topic.values()) <= 5
    assert len({q.id for q in questions}) == len(questions)


def test_every_answer_is_verbatim_and_unique_in_this_interpreters_topics(
    questions: list[EvalQuestion],
) -> None:
    corpus = load_corpus()
    assert check(questions, corpus) == []
    for q in questions:
        assert corpus[q.topic][q.start : q.end] == q.answer


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def test_questions_paraphrase_rather_than_copy_the_answer(
    questions: list[EvalQuestion],
) -> None:
    for q in questions:
        asked, answer = words(q.question), " " + " ".join(words(q.answer)) + " "
        runs = (" " + " ".join(asked[i : i + 6]) + " " for i in range(len(asked) - 5))
        assert not any(run in answer for run in runs), q.id


def make(start: int = 100, length: int = 60, topic: str = "t") -> EvalQuestion:
    return EvalQuestion("q1", topic, "x" * length, "why?", start, start + length)


def test_relevant_needs_half_of_the_answer_in_the_same_topic() -> None:
    q = make(start=100, length=60)  # answer span [100, 160)
    assert relevant(q, "t", 100, 160)
    assert relevant(q, "t", 0, 1000)
    assert relevant(q, "t", 130, 400)  # the second half exactly
    assert relevant(q, "t", 0, 130)  # the first half exactly
    assert not relevant(q, "t", 131, 400)  # one character short of half
    assert not relevant(q, "t", 0, 129)
    assert not relevant(q, "t", 0, 100)  # touches, no overlap
    assert not relevant(q, "t", 160, 300)
    assert not relevant(q, "other", 0, 1000)
    assert not relevant(replace(q, start=-1, end=-1), "t", 0, 1000)


def test_relevant_on_a_real_question(questions: list[EvalQuestion]) -> None:
    q = questions[0]
    assert relevant(q, q.topic, q.start, q.end)
    assert relevant(q, q.topic, max(0, q.start - 500), q.end + 500)
    other = next(name for name in load_corpus() if name != q.topic)
    assert not relevant(q, other, q.start, q.end)


def test_check_reports_each_kind_of_problem() -> None:
    good = "the one passage that answers it, long enough to count."
    corpus = {"a": "alpha " * 20 + good}
    repeated = "alpha " * 8
    cases = [
        EvalQuestion("q1", "a", good, "ok?", 0, 0),
        EvalQuestion("q2", "a", "not in the text at all, though long enough", "?", 0, 0),
        EvalQuestion("q3", "a", repeated, "?", 0, 0),
        EvalQuestion("q4", "a", "alpha", "?", 0, 0),
        EvalQuestion("q5", "a", good + " " * 300, "?", 0, 0),
        EvalQuestion("q6", "missing", good, "?", 0, 0),
        EvalQuestion("q1", "a", good, "again?", 0, 0),
    ]
    problems = check(cases, corpus)
    assert any(p.startswith("q1: duplicate id") for p in problems)
    assert "q2: answer not found in topic 'a'" in problems
    assert "q3: answer found more than once in topic 'a'" in problems
    assert any(p.startswith("q4: answer is 5 characters") for p in problems)
    assert any(p.startswith("q5: answer is") for p in problems)
    assert "q6: no topic 'missing' in the corpus" in problems
    assert check(cases[:1], corpus) == []


def test_every_question_has_a_key_phrase_found_verbatim_in_its_answer(
    questions: list[EvalQuestion],
) -> None:
    phrases = load_key_phrases()
    assert list(phrases) == [q.id for q in questions]
    for q in questions:
        phrase = phrases[q.id]
        assert phrase == phrase.strip() and 1 <= len(phrase) <= 40, q.id
        assert phrase in squash(q.answer), q.id


def test_no_evidence_questions_are_off_the_corpus_and_distinct(
    questions: list[EvalQuestion],
) -> None:
    no_evidence = load_no_evidence()
    assert len(no_evidence) >= 30
    ids = [i for i, _ in no_evidence]
    assert len(set(ids)) == len(ids) and not set(ids) & {q.id for q in questions}
    asked = {q.question for q in questions}
    for _, question in no_evidence:
        assert question.strip() and question not in asked
        # Another subject: the question says nothing about Python.
        assert "python" not in question.lower()


def test_squash_collapses_line_breaks_and_runs_of_spaces() -> None:
    assert squash("  a\n  b\tc  ") == "a b c"
