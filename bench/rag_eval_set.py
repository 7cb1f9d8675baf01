"""A retrieval evaluation set over the Python Language Reference topics.

Corpus: `pydoc_data.topics.topics`, the reference text that `help('assignment')` shows: about 79
topics (statements, expressions, the data model, string formatting, built-in types, pdb...), about
465 KB of plain text.  It ships with CPython itself, under the Python Software Foundation licence,
so nothing is downloaded and every machine with the interpreter has the same corpus.

Questions: `bench/data/rag_eval.jsonl`, one object a line with `id`, `topic`, `answer` (a passage
copied verbatim from `topics[topic]`, occurring there exactly once) and `question` (how a user
would ask it, paraphrased by hand rather than lifted from the passage).  The set was written from
reading the topic texts before any retrieval tuning; do not edit it to suit a retriever.

Some topics contain others' text (`compound` holds `try`, `with`, `function`...; `specialnames`
holds `customization`, `attribute-access`...; `execmodel` holds `naming` and `exceptions`), so
some answers also occur verbatim in a second topic.  `relevant()` counts only the question's own
topic.  The text changes a little between CPython releases: `check()` says when an answer no longer
matches the running interpreter's copy.

Answer faithfulness (issue 21), both files written before any decoding was tuned:
`bench/data/rag_key_phrases.jsonl` gives every question a key phrase (`id`, `key_phrase`): a short
exact phrase of its answer passage (a name, keyword, number or term, whitespace collapsed) that a
correct grounded answer must contain. `bench/data/rag_no_evidence.jsonl` holds questions (`id`,
`topic`, `question`) on other subjects (cooking, geography, other languages' APIs...) that the
corpus cannot answer.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"
DEFAULT_PATH = DATA / "rag_eval.jsonl"
KEY_PHRASES_PATH = DATA / "rag_key_phrases.jsonl"
NO_EVIDENCE_PATH = DATA / "rag_no_evidence.jsonl"
MIN_ANSWER_CHARS = 40
MAX_ANSWER_CHARS = 300


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    topic: str
    answer: str
    question: str
    start: int  # offset of `answer` in its topic's text; -1 when it is not found there
    end: int  # start + len(answer); -1 when it is not found


def load_corpus() -> dict[str, str]:
    """The reference topics of the running interpreter, name -> text, sorted by name."""
    from pydoc_data.topics import topics

    return {name: topics[name] for name in sorted(topics)}


def load_questions(path: Path | str = DEFAULT_PATH) -> list[EvalQuestion]:
    """The questions, each with its answer's character span in its topic's text."""
    corpus = load_corpus()
    questions = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        start = corpus.get(row["topic"], "").find(row["answer"])
        end = start + len(row["answer"]) if start >= 0 else -1
        questions.append(
            EvalQuestion(
                id=row["id"],
                topic=row["topic"],
                answer=row["answer"],
                question=row["question"],
                start=start,
                end=end,
            )
        )
    return questions


def _rows(path: Path | str) -> list[dict[str, str]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def squash(text: str) -> str:
    """Whitespace collapsed to single spaces: how an answer quotes a passage that wraps lines."""
    return " ".join(text.split())


def load_key_phrases(path: Path | str = KEY_PHRASES_PATH) -> dict[str, str]:
    """Question id -> the phrase a correct answer contains exactly (after `squash`)."""
    return {row["id"]: row["key_phrase"] for row in _rows(path)}


def load_no_evidence(path: Path | str = NO_EVIDENCE_PATH) -> list[tuple[str, str]]:
    """(id, question) pairs the corpus holds no evidence for."""
    return [(row["id"], row["question"]) for row in _rows(path)]


def relevant(question: EvalQuestion, topic: str, chunk_start: int, chunk_end: int) -> bool:
    """Whether a chunk (`topic`, [chunk_start, chunk_end)) holds at least half of the answer."""
    if topic != question.topic or question.start < 0:
        return False
    overlap = min(chunk_end, question.end) - max(chunk_start, question.start)
    return overlap > 0 and 2 * overlap >= question.end - question.start


def check(questions: list[EvalQuestion], corpus: dict[str, str]) -> list[str]:
    """Problems with the set against `corpus`; an empty list when there are none."""
    problems = []
    counts = Counter(q.id for q in questions)
    problems += [f"{qid}: duplicate id ({n} times)" for qid, n in counts.items() if n > 1]
    for q in questions:
        if not q.question.strip():
            problems.append(f"{q.id}: empty question")
        if not MIN_ANSWER_CHARS <= len(q.answer) <= MAX_ANSWER_CHARS:
            problems.append(
                f"{q.id}: answer is {len(q.answer)} characters, "
                f"not {MIN_ANSWER_CHARS}-{MAX_ANSWER_CHARS}"
            )
        if q.topic not in corpus:
            problems.append(f"{q.id}: no topic {q.topic!r} in the corpus")
            continue
        text = corpus[q.topic]
        first = text.find(q.answer)
        if first < 0:
            problems.append(f"{q.id}: answer not found in topic {q.topic!r}")
        elif text.find(q.answer, first + 1) >= 0:
            problems.append(f"{q.id}: answer found more than once in topic {q.topic!r}")
    return problems
