"""The answer-faithfulness bench's grading (`bench.rag_answers`): exact key phrases, refusals,
the rates before and after, the fixed subset."""

from __future__ import annotations

import pytest

from bench.rag_answers import Answered, Asked, eval_subset, no_evidence_questions, rates
from shared.domain.tools.grounded import NO_EVIDENCE

EVAL = Asked("q1", "What error do I get?", "NameError")
OFF = Asked("n1", "How long do I boil an egg?", None)


def answered(asked: Asked, text: str, on: bool = False, reason: str = "stop") -> Answered:
    return Answered(asked, on, text, reason)


def test_the_key_phrase_must_be_there_exactly() -> None:
    assert answered(EVAL, "It raises a NameError [1].").exact
    assert answered(EVAL, "It raises a\n  NameError.").exact  # white space collapsed
    assert not answered(EVAL, "It raises a nameerror.").exact  # case counts
    assert not answered(EVAL, "It raises a Name Error.").exact
    assert not answered(OFF, "NameError").exact  # nothing to find in a no-evidence answer


@pytest.mark.parametrize(
    "text",
    [NO_EVIDENCE, "The sources do not contain information about boiling eggs.",
     "I cannot answer that from the provided sources.", "The sources don't mention eggs.",
     "There is no information about eggs in the sources [1].",
     "Boiling eggs is not mentioned in the sources."],
)  # fmt: skip
def test_refusals_are_recognised(text: str) -> None:
    assert answered(OFF, text).refused


@pytest.mark.parametrize(
    "text", ["Boil it for six minutes.", "It raises a NameError [1].", "Eggs contain protein."]
)
def test_answers_are_not_refusals(text: str) -> None:
    assert not answered(OFF, text).refused


def test_the_evidence_threshold_counts_as_a_refusal() -> None:
    assert answered(OFF, NO_EVIDENCE, reason="no_evidence").refused


def test_rates_split_before_and_after() -> None:
    answers = [
        answered(EVAL, "A NameError.", on=False),
        answered(EVAL, "A NameError.", on=True),
        answered(Asked("q2", "?", "TypeError"), "A typeerror.", on=False),
        answered(Asked("q2", "?", "TypeError"), "A TypeError.", on=True),
        answered(OFF, NO_EVIDENCE, on=False, reason="no_evidence"),
        answered(OFF, NO_EVIDENCE, on=True, reason="no_evidence"),
        answered(Asked("n2", "?", None), "Boil it.", on=False),
        answered(Asked("n2", "?", None), "The sources do not say.", on=True),
    ]
    before, after = rates(answers, False), rates(answers, True)
    assert before["exact"] == 0.5 and after["exact"] == 1.0
    assert before["no_evidence"] == 0.5 and after["no_evidence"] == 1.0
    assert before["retrieval_gate"] == after["retrieval_gate"] == 0.5
    assert before["eval_refused"] == 0.0


def test_the_subset_is_fixed_and_every_question_has_its_phrase() -> None:
    subset = eval_subset(3)
    assert [a.id for a in subset[:3]] == ["q001", "q004", "q007"]
    assert len(subset) == 61 and all(a.key_phrase for a in subset)
    assert len(eval_subset(1)) == 182
    assert all(a.key_phrase is None for a in no_evidence_questions())
