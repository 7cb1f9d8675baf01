"""`llm.intent_classifier_v1`: which intent a chat message expresses, for a workflow's `switch`
node to branch on. Output: `{"intent", "confidence", "method"}`.

Design choices:

- **kNN over exemplars, not keywords.** The message and every label's exemplar messages are
  embedded with the backend's embedding model (all-MiniLM-L6-v2 locally); a label's score is the
  mean of its `top_k` best cosine similarities. A mean of the nearest few is steadier than the
  single nearest exemplar (one lucky neighbour) and than the label centroid (a label such as
  `code_edit` spans several clusters: writing, fixing, explaining). A long message is seen
  twice, whole and as its first `head_words` words, and the two score sets are averaged: the
  request ("Summarize this: ...", "Fix this: ...") usually comes first, and a mean-pooled
  embedding of the whole would otherwise be about the pasted text rather than the request.
- **The LLM breaks close calls.** When the two best scores are within `margin`, the chat model
  is asked, greedily and in at most 8 tokens, which of the two labels fits, given their
  descriptions and, as earlier turns, their exemplars nearest to the message (the turns make a
  135M model answer with a bare label); an answer naming neither (or a backend that fails)
  leaves the embedding winner.
  The LLM only ever chooses between the two candidates, so a small model cannot wander off to
  a third label or invent one. It runs without the router's adapters: a user's style adapter
  has no business in a routing decision.
- **Confidence** is the softmax of the label scores at `temperature`, read at the chosen label:
  near 1 when one label clearly wins, 1/2 or less when the call was close (whoever decided).
- **Intents are data.** The built-in labels, their one-line descriptions, exemplars and the
  knobs live in `intents.json` beside this file. A workflow may pass `labels` in the tool
  inputs: a list of built-in names (a subset), or a mapping `label -> {description, examples}`
  where a value of `null` means the built-in label of that name and a label without examples
  is represented by its description.
- **Exemplar vectors are cached per backend** (a backend is one embedding model), keyed by the
  exemplar texts of a label, in the `IntentClassifier` instance, bounded (LRU). The tool entry
  point `classify_intent` uses one process-wide classifier made on first use by
  `default_classifier()`, which is the only module-level state; tests and callers that want
  their own cache make their own `IntentClassifier`.
- Messages are cut to `max_message_chars` before embedding (MiniLM reads 256 tokens at most
  anyway; the start of a message carries the request, say "Summarize this: ...") and to
  `max_prompt_chars` in the tie-break prompt. All I/O goes through the backend.
"""

from __future__ import annotations

import json
import logging
import math
import re
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from shared.domain.llm.backend import GenerationParams, LLMBackend, Message
from shared.domain.tools.base import ToolContext
from shared.platform.errors import AppError, ServerError, ValidationError

log = logging.getLogger(__name__)

TOOL_NAME = "llm.intent_classifier_v1"
INTENTS_FILE = Path(__file__).with_name("intents.json")
EMBED_BATCH = 64  # texts per embedding call (the local service takes up to 256)
MAX_LABELS = 32
MAX_EXAMPLES = 32  # per label
MAX_EXAMPLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 300
TIE_BREAK_MAX_TOKENS = 8
SHOTS_PER_LABEL = 2  # nearest exemplars per candidate, as earlier turns of the prompt
CACHE_SETS_PER_BACKEND = 256  # cached exemplar sets (one per label) per backend
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")

Vector = list[float]


@dataclass(frozen=True)
class Intent:
    label: str
    description: str
    examples: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class IntentSet:
    """Labels with their exemplars, and the classification knobs (see `intents.json`)."""

    labels: Mapping[str, Intent]
    top_k: int = 3
    margin: float = 0.02
    temperature: float = 0.05
    max_message_chars: int = 1000
    max_prompt_chars: int = 500
    head_words: int = 12

    @classmethod
    def load(cls, path: Path = INTENTS_FILE) -> IntentSet:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IntentSet:
        return cls(
            labels=_parse_labels(data["labels"], builtin={}),
            top_k=int(data.get("top_k", 3)),
            margin=float(data.get("margin", 0.02)),
            temperature=float(data.get("temperature", 0.05)),
            max_message_chars=int(data.get("max_message_chars", 1000)),
            max_prompt_chars=int(data.get("max_prompt_chars", 500)),
            head_words=int(data.get("head_words", 12)),
        )

    def select(self, labels: Any) -> IntentSet:
        """These knobs with the labels a workflow asked for (see the module docstring)."""
        if labels is None:
            return self
        return replace(self, labels=_parse_labels(labels, builtin=self.labels))


def _parse_labels(spec: Any, *, builtin: Mapping[str, Intent]) -> dict[str, Intent]:
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        spec = {name: None for name in spec}
    if not isinstance(spec, Mapping):
        raise ValidationError("labels must be a list of label names or a mapping of labels")
    if not 2 <= len(spec) <= MAX_LABELS:
        raise ValidationError(f"labels must name 2 to {MAX_LABELS} intents")
    parsed: dict[str, Intent] = {}
    for name, value in spec.items():
        if not isinstance(name, str) or not _LABEL.fullmatch(name):
            raise ValidationError("a label is a name of letters, digits, '_' or '-'")
        parsed[name] = _parse_intent(name, value, builtin)
    return parsed


def _parse_intent(name: str, value: Any, builtin: Mapping[str, Intent]) -> Intent:
    if value is None:
        if name not in builtin:
            raise ValidationError(f"unknown intent label {name!r}", details={"label": name})
        return builtin[name]
    if not isinstance(value, Mapping):
        raise ValidationError(f"intent {name!r} must be an object", details={"label": name})
    description = value.get("description", "")
    examples = value.get("examples", [])
    if not isinstance(description, str) or not isinstance(examples, list):
        raise ValidationError(
            f"intent {name!r} needs a string description and a list of examples",
            details={"label": name},
        )
    texts = tuple(_clip(e, MAX_EXAMPLE_CHARS) for e in examples if isinstance(e, str))
    texts = tuple(t for t in texts if t)
    description = _clip(description, MAX_DESCRIPTION_CHARS)
    if len(texts) != len(examples) or len(texts) > MAX_EXAMPLES:
        raise ValidationError(
            f"intent {name!r}: examples must be up to {MAX_EXAMPLES} non-empty strings",
            details={"label": name},
        )
    if not texts and not description:
        raise ValidationError(
            f"intent {name!r} needs examples or a description", details={"label": name}
        )
    return Intent(label=name, description=description, examples=texts or (description,))


def _clip(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit].strip()


# --- scoring ------------------------------------------------------------------------------
def _normalized(vector: Sequence[float]) -> Vector:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _dot(a: Vector, b: Vector) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def knn_scores(
    views: Sequence[Vector], exemplars: Mapping[str, Sequence[Vector]], top_k: int
) -> dict[str, float]:
    """Each label's mean cosine similarity over its `top_k` nearest exemplars (or all of them
    where it has fewer), averaged over the message's views (normalized vectors)."""
    scores = {}
    for label, vectors in exemplars.items():
        label_scores = []
        for view in views:
            nearest = sorted((_dot(view, v) for v in vectors), reverse=True)[:top_k]
            label_scores.append(sum(nearest) / len(nearest))
        scores[label] = sum(label_scores) / len(label_scores)
    return scores


def softmax(scores: Mapping[str, float], temperature: float) -> dict[str, float]:
    top = max(scores.values())
    weights = {label: math.exp((s - top) / temperature) for label, s in scores.items()}
    total = sum(weights.values())
    return {label: w / total for label, w in weights.items()}


# --- the LLM tie-break ----------------------------------------------------------------------
def tie_break_prompt(
    text: str, first: Intent, second: Intent, shots: Sequence[tuple[str, str]]
) -> list[Message]:
    """The two candidates with their descriptions, then `shots` (message, label) as earlier
    turns, then the message: the turns pin the answer to a bare label, which a 135M model does
    not manage from an instruction alone."""
    system = (
        f"Classify the user's message as {first.label} or {second.label}.\n"
        f"{first.label}: {first.description}\n{second.label}: {second.description}\n"
        "Reply with the category name only."
    )
    messages = [Message("system", system)]
    for shot, label in shots:
        messages += [Message("user", shot), Message("assistant", label)]
    return [*messages, Message("user", text)]


def parse_choice(answer: str, candidates: Sequence[str]) -> str | None:
    """The candidate label the answer names first (`code_edit`, `code edit`, `Code-Edit`), or
    None where it names none."""
    found: list[tuple[int, int, str]] = []
    for label in candidates:
        words = [re.escape(w) for w in re.split(r"[_\-]", label.lower()) if w]
        match = re.search(r"\b" + r"[\s_\-]*".join(words) + r"\b", answer.lower())
        if match:
            found.append((match.start(), -len(label), label))
    return min(found)[2] if found else None


# --- the classifier -------------------------------------------------------------------------
@dataclass
class IntentClassifier:
    """Classifies messages against an `IntentSet`, caching exemplar vectors per backend."""

    intents: IntentSet = field(default_factory=IntentSet.load)
    _cache: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[str, ...], list[Vector]]] = field(
        default_factory=weakref.WeakKeyDictionary, init=False, repr=False
    )

    async def __call__(self, inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        """The tool: `inputs` = {"message": str, "labels"?: list | mapping}."""
        message = inputs.get("message")
        if not isinstance(message, str):
            raise ValidationError("message must be a string")
        (result,) = await self.classify_many(
            [message], ctx.backend, labels=inputs.get("labels"), request_id=ctx.request_id
        )
        return result

    async def classify(
        self,
        message: str,
        backend: LLMBackend,
        *,
        labels: Any = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        (result,) = await self.classify_many(
            [message], backend, labels=labels, request_id=request_id
        )
        return result

    async def classify_many(
        self,
        messages: Sequence[str],
        backend: LLMBackend,
        *,
        labels: Any = None,
        request_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Classify several messages with batched embeddings; tie-breaks run one at a time."""
        intents = self.intents.select(labels)
        texts = [_clip(m, intents.max_message_chars) for m in messages]
        if not texts or not all(texts):
            raise ValidationError("message must not be empty")
        views = await _message_views(backend, texts, intents.head_words)
        exemplars = await self._exemplar_vectors(backend, intents)
        results = []
        for index, (text, vectors) in enumerate(zip(texts, views, strict=True)):
            rid = None if request_id is None else f"{request_id}-intent-{index}"[-128:]
            results.append(await _decide(text, vectors, exemplars, intents, backend, rid))
        return results

    async def _exemplar_vectors(
        self, backend: LLMBackend, intents: IntentSet
    ) -> dict[str, list[Vector]]:
        try:
            cached = self._cache.setdefault(backend, OrderedDict())
        except TypeError:  # a backend that cannot be weakly referenced: no cache
            cached = OrderedDict()
        missing = [i.examples for i in intents.labels.values() if i.examples not in cached]
        missing = list(dict.fromkeys(missing))
        if missing:
            flat = [text for examples in missing for text in examples]
            vectors = iter(await _embed(backend, flat))
            for examples in missing:
                cached[examples] = [next(vectors) for _ in examples]
        found = {}
        for label, intent in intents.labels.items():
            cached.move_to_end(intent.examples)
            found[label] = cached[intent.examples]
        while len(cached) > CACHE_SETS_PER_BACKEND:
            cached.popitem(last=False)
        return found


async def _embed(backend: LLMBackend, texts: Sequence[str]) -> list[Vector]:
    vectors: list[Vector] = []
    for start in range(0, len(texts), EMBED_BATCH):
        batch = await backend.embed(texts[start : start + EMBED_BATCH])
        vectors.extend(_normalized(v) for v in batch)
    if len(vectors) != len(texts):
        raise ServerError("the embedding model answered a different number of vectors")
    return vectors


def message_head(text: str, words: int) -> str:
    return " ".join(text.split()[:words])


async def _message_views(
    backend: LLMBackend, texts: Sequence[str], head_words: int
) -> list[tuple[Vector, ...]]:
    """Per message, its vector and, where it is longer, the vector of its first `head_words`
    words: the request ("Summarize this: ...", "Fix this: ...") without the pasted text that
    would otherwise dominate a mean-pooled embedding. All in one batched pass."""
    heads = [message_head(t, head_words) if head_words > 0 else t for t in texts]
    unique = list(dict.fromkeys([*texts, *heads]))
    vectors = dict(zip(unique, await _embed(backend, unique), strict=True))
    return [
        (vectors[t],) if h == t else (vectors[t], vectors[h])
        for t, h in zip(texts, heads, strict=True)
    ]


def _similarities(views: Sequence[Vector], vectors: Sequence[Vector]) -> list[float]:
    return [sum(_dot(view, v) for view in views) / len(views) for v in vectors]


async def _decide(
    text: str,
    views: Sequence[Vector],
    exemplars: Mapping[str, Sequence[Vector]],
    intents: IntentSet,
    backend: LLMBackend,
    request_id: str | None,
) -> dict[str, Any]:
    scores = knn_scores(views, exemplars, intents.top_k)
    first, second = sorted(scores, key=scores.__getitem__, reverse=True)[:2]
    choice, method = first, "embedding"
    if scores[first] - scores[second] < intents.margin:
        shots = {
            label: _nearest(intents.labels[label].examples, exemplars[label], views)
            for label in (first, second)
        }
        picked = await _ask_llm(text, intents, (first, second), shots, backend, request_id)
        if picked is not None:
            choice, method = picked, "llm"
    confidence = softmax(scores, intents.temperature)[choice]
    return {"intent": choice, "confidence": round(confidence, 4), "method": method}


def _nearest(
    examples: Sequence[str], vectors: Sequence[Vector], views: Sequence[Vector]
) -> list[str]:
    similarities = _similarities(views, vectors)
    order = sorted(range(len(examples)), key=lambda i: similarities[i], reverse=True)
    return [examples[i] for i in order[:SHOTS_PER_LABEL]]


async def _ask_llm(
    text: str,
    intents: IntentSet,
    ranked: tuple[str, str],
    shots: Mapping[str, Sequence[str]],
    backend: LLMBackend,
    request_id: str | None,
) -> str | None:
    """Which of the embedding's two best labels the LLM prefers (None: it named neither).

    The runner-up is listed first and the shots alternate winner, runner-up: a 135M model leans
    towards the first shot's label and away from the first-listed, and this order measured
    best on the evaluation set."""
    winner, runner_up = ranked
    turns = [
        (shot, label)
        for pair in zip(shots[winner], shots[runner_up], strict=False)
        for shot, label in ((pair[0], winner), (pair[1], runner_up))
    ]
    prompt = tie_break_prompt(
        _clip(text, intents.max_prompt_chars),
        intents.labels[runner_up],
        intents.labels[winner],
        turns,
    )
    params = GenerationParams(temperature=0.0, max_tokens=TIE_BREAK_MAX_TOKENS)
    try:
        completion = await backend.complete(prompt, params, request_id=request_id)
    except AppError as exc:  # the embedding answer stands; the router must not fail for this
        log.warning("intent tie-break failed, keeping the embedding answer: %s", exc.message)
        return None
    return parse_choice(completion.text, ranked)


@cache
def default_classifier() -> IntentClassifier:
    """The process-wide classifier behind `classify_intent`, made on first use (it reads
    `intents.json` once and holds the exemplar-vector cache for the process)."""
    return IntentClassifier()


async def classify_intent(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """The `llm.intent_classifier_v1` tool."""
    return await default_classifier()(inputs, ctx)
