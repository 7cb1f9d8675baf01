"""The architect's prompt and the defensive reading of its answer (pure: no I/O).

The model is asked about one artifact at a time (a small model does better with one thing to
look at, and a small context window holds one): the aggregate metrics that concern it (counts
only: no user's text, no user id) and its current JSON, by name, kind and version; it is asked
for a JSON array of `{"artifact", "patch", "justification"}`. A 135M model rarely answers that
well, so the answer is read leniently and judged strictly: the first JSON array or object in
the text is taken (code fences and chatter around it are ignored), and each item either
becomes a `Candidate` for ConfigOps, which validates it like anyone's proposal, or is counted
`unparsable` with the reason. Nothing here decides whether a patch is good: that is the
validation's, the dry-run's and an admin's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain.llm.backend import Message

MAX_ARTIFACT_CHARS = 2400  # the artifact's JSON in the prompt
MAX_METRICS_CHARS = 1800
# Prompt sizes tried in turn until the prompt fits the model's window: rows of each metrics
# breakdown (0: the totals only).
METRIC_ROWS = (8, 3, 0)
MAX_JUSTIFICATION_CHARS = 1000
MAX_DECODE_TRIES = 8  # JSON starts tried in the answer before it counts as unparsable

SYSTEM = (
    "You are the architect of a chat system: you propose JSON Patch (RFC 6902) changes to its"
    " routing policy and chat workflow. You answer with a JSON array of proposals only."
)
# An example of the answer's form per kind (a valid patch of the seeded artifact).
EXAMPLES = {
    "policy.routing": ({"op": "replace", "path": "/weight_floor", "value": 0.1},
                       "adapters at tiny weights change nothing"),
    "workflow.chat": ({"op": "replace", "path": "/timeout_ms", "value": 90000},
                      "answers that take longer fail anyway"),
}  # fmt: skip
# Instructions and the example first, then the artifact and the metrics, then a cue: a small
# model given the task last tends to echo the prompt instead (measured on SmolLM2-135M).
INSTRUCTIONS = (
    "Propose at most {n} changes to the artifact {name} that the metrics below justify, as a"
    " JSON array like this example (or [] if none is needed):\n{example}"
)
CUE = "Your JSON array:"


@dataclass(frozen=True)
class Target:
    """An artifact the architect may patch, as the prompt shows it."""

    artifact_id: str
    name: str
    kind: str
    version: int
    schema: dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """One proposal read from the answer, for ConfigOps to validate."""

    target: Target
    patch: list[dict[str, Any]]
    justification: str | None


@dataclass(frozen=True)
class Reading:
    """What the answer held: `found` (False: no JSON at all), the candidates in order, and
    why each other item was unusable."""

    found: bool
    candidates: list[Candidate]
    unusable: list[str]

    @property
    def items(self) -> int:
        return len(self.candidates) + len(self.unusable)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _bounded(value: Any, limit: int) -> str:
    text = compact(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def brief(metrics: dict[str, Any], rows: int) -> dict[str, Any]:
    """The metrics with each breakdown cut to its first `rows` entries (the largest), or to
    the plain totals when `rows` is 0."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(value, dict):
            out[key] = value
        elif rows:
            out[key] = dict(list(value.items())[:rows])
    return out


def example(target: Target) -> list[dict[str, Any]]:
    """The example answer for `target`'s kind (a valid patch of the seeded artifact)."""
    op, why = EXAMPLES.get(target.kind, ({"op": "test", "path": "/kind", "value": target.kind},
                                         "..."))  # fmt: skip
    return [{"artifact": target.name, "patch": [op], "justification": why}]


def build(metrics: dict[str, Any], target: Target, *, max_proposals: int) -> list[Message]:
    """The system and user messages of the architect's call about `target`."""
    days = metrics.get("window_days")
    text = (
        INSTRUCTIONS.format(
            n=max(1, max_proposals), name=target.name, example=compact(example(target))
        )
        + f"\n\nThe artifact {target.name} ({target.kind}, version {target.version}):\n"
        f"{_bounded(target.schema, MAX_ARTIFACT_CHARS)}\n\n"
        f"Metrics of the last {days} days:\n{_bounded(metrics, MAX_METRICS_CHARS)}\n\n{CUE}"
    )
    return [Message("system", SYSTEM), Message("user", text)]


def first_json(text: str) -> Any | None:
    """The first JSON array or object in `text` (None: there is none). Starts are tried in
    order, so prose with a stray bracket before the real answer still parses; an array cut off
    by the token budget gives the elements it completed."""
    decoder = json.JSONDecoder()
    tries = 0
    for index, char in enumerate(text):
        if char not in "[{":
            continue
        tries += 1
        try:
            value, _ = decoder.raw_decode(text, index)
        except ValueError:
            completed = _completed_elements(decoder, text, index) if char == "[" else None
            if completed:
                return completed
            if tries >= MAX_DECODE_TRIES:
                return None
            continue
        return value
    return None


def _completed_elements(decoder: json.JSONDecoder, text: str, start: int) -> list[Any] | None:
    """The elements of the array at `start` that are complete before it breaks off."""
    done: list[Any] = []
    at = start + 1
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        try:
            value, at = decoder.raw_decode(text, at)
        except ValueError:
            return done or None
        done.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text) or text[at] != ",":
            return done
        at += 1


def _items(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in ("proposals", "patches", "changes"):
            if isinstance(value.get(key), list):
                return list(value[key])
        return [value]  # one proposal, not wrapped in an array
    return None


def _target(item: dict[str, Any], targets: Sequence[Target]) -> Target | str:
    named = item.get("artifact", item.get("name"))
    if named is None and len(targets) == 1:
        return targets[0]  # asked about one artifact: a proposal that names none is for it
    if not isinstance(named, str) or not named.strip():
        return "names no artifact"
    named = named.strip()
    for target in targets:  # by name, or by kind (one artifact of each kind is shown)
        if named in (target.name, target.artifact_id, target.kind):
            return target
    return "names an artifact it was not shown"


def _patch(item: dict[str, Any]) -> list[dict[str, Any]] | str:
    patch = item.get("patch", item.get("operations"))
    if isinstance(patch, dict) and "op" in patch:
        patch = [patch]  # one operation, not wrapped in an array
    if patch is None and "op" in item:
        patch = [{k: v for k, v in item.items() if k not in ("artifact", "justification")}]
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        return "has no patch (a list of operations)"
    return patch


def read(text: str, targets: Sequence[Target]) -> Reading:
    """The candidates in the model's answer, and why each other item is unusable."""
    items = _items(first_json(text))
    if items and all(isinstance(i, dict) and "op" in i and "patch" not in i for i in items):
        items = [{"patch": items}]  # a bare JSON Patch: one proposal
    if items is None:
        return Reading(False, [], [])
    candidates: list[Candidate] = []
    unusable: list[str] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            unusable.append("not an object")
            continue
        target, patch = _target(item, targets), _patch(item)
        if isinstance(target, str) or isinstance(patch, str):
            unusable.append(target if isinstance(target, str) else str(patch))
            continue
        if patch == example(target)[0]["patch"]:
            unusable.append("copies the example")
            continue
        key = compact([target.artifact_id, patch])
        if key in seen:
            unusable.append("repeats an earlier proposal")
            continue
        seen.add(key)
        said = item.get("justification")
        justification = said.strip()[:MAX_JUSTIFICATION_CHARS] if isinstance(said, str) else None
        candidates.append(Candidate(target, patch, justification or None))
    return Reading(True, candidates, unusable)


def problem_kind(problem: dict[str, Any]) -> str:
    """A coarse name for a validation problem, for the run's counts (the problem itself, with
    its path and message, stays on the patch)."""
    message = str(problem.get("message", ""))
    if message.startswith(("operation ", "a patch is", "a patch has")):
        return "does_not_apply"
    if message == "the patch changes nothing":
        return "no_change"
    if message.startswith("stale base"):
        return "stale_base"
    if "expression does not compile" in message:
        return "expression"
    if "is visible here" in message or message.startswith("names no "):
        return "reference"
    if message.startswith("duplicate "):
        return "duplicate_id"
    return "schema"
