"""The simulated users' preferences, each decided by a checker on an answer's text.

Written and committed before any training or tuning (the benchmark must not be fitted to its
judges). A checker is strict and mechanical: no model grades another model here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_WORD = re.compile(r"\b\w[\w'-]*\b")


def _lines(answer: str) -> list[str]:
    return [line.strip() for line in answer.strip().splitlines() if line.strip()]


def bullet_list(answer: str) -> bool:
    """At least two lines, and every non-empty line a `- ` bullet."""
    lines = _lines(answer)
    return len(lines) >= 2 and all(line.startswith("- ") and len(line) > 2 for line in lines)


def tldr_last_line(answer: str) -> bool:
    """The last non-empty line starts with `TL;DR:` and says something after it."""
    lines = _lines(answer)
    return bool(lines) and lines[-1].startswith("TL;DR:") and len(lines[-1]) > len("TL;DR:") + 1


def under_40_words(answer: str) -> bool:
    """A non-empty answer of fewer than 40 words."""
    words = _WORD.findall(answer)
    return 0 < len(words) < 40


def opens_in_short(answer: str) -> bool:
    """Our own: the answer's first words are `In short,` (a fixed opening, a habit a user
    might ask for)."""
    return answer.lstrip().startswith("In short,")


@dataclass(frozen=True)
class Preference:
    name: str
    description: str  # what the simulated user would tell a person
    satisfied: Callable[[str], bool]
    # How the simulated user rewrites an answer it dislikes into one it would have liked: the
    # correction it sends. Deterministic, from the original answer only.
    correct: Callable[[str], str]


def _sentences(answer: str) -> list[str]:
    text = " ".join(answer.split())
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text) if p.strip()]
    return parts or ([text] if text else [])


def _as_bullets(answer: str) -> str:
    points = _sentences(answer)[:4] or ["(no answer)"]
    if len(points) == 1:
        points = [*points, "That is the main point."]
    return "\n".join(f"- {point}" for point in points)


def _with_tldr(answer: str) -> str:
    body = answer.strip() or "(no answer)"
    first = (_sentences(body) or [body])[0]
    return f"{body}\n\nTL;DR: {first}"


def _shortened(answer: str) -> str:
    kept: list[str] = []
    for sentence in _sentences(answer):
        if len(_WORD.findall(" ".join([*kept, sentence]))) >= 35:
            break
        kept.append(sentence)
    if kept:
        return " ".join(kept)
    words = (answer.split() or ["No", "answer."])[:30]  # one long sentence: cut it
    return " ".join(words).rstrip(".,;:") + "."


def _in_short(answer: str) -> str:
    body = answer.strip() or "I do not know."
    return "In short, " + body[0].lower() + body[1:]


PREFERENCES = (
    Preference("bullets", "Answer as a bullet list, one point per line.", bullet_list, _as_bullets),
    Preference(
        "tldr",
        "End every answer with a last line starting with 'TL;DR:'.",
        tldr_last_line,
        _with_tldr,
    ),
    Preference("brief", "Keep answers under 40 words.", under_40_words, _shortened),
    Preference("in_short", "Start every answer with 'In short,'.", opens_in_short, _in_short),
)
