"""Naming clusters: deterministic c-TF-IDF keywords, and a short label and one sentence from
the model (SPEC §7.2).

c-TF-IDF (class-based TF-IDF, as BERTopic defines it) treats each cluster's texts as one
document: a term scores `tf(t, c) * log(1 + A / f(t))`, its frequency in the cluster times
how rare it is over all clusters (A: the mean word count of a cluster, f(t): the term's count
over all of them), so a cluster is named by what sets it apart, not by what every cluster
says. Ties are broken alphabetically so the same texts always give the same keywords.

The model's answer is a bonus: with a 135M model it is often poor, so it is parsed strictly,
refused when it does not look like a label, and the keywords stay the fallback label. The
call has a deadline and any failure is only logged: labelling never blocks clustering.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from shared.domain.llm.backend import GenerationParams, LLMBackend, Message

log = logging.getLogger(__name__)

TOP_KEYWORDS = 5
LABEL_KEYWORDS = 3  # how many keywords the fallback label joins
MODEL_SAMPLES = 6
MODEL_MAX_TOKENS = 48
LABEL_MAX_TOKENS = 12
MAX_LABEL_WORDS = 5
GROUNDED_MIN_COSINE = 0.25  # a model sentence this near the centroid is about the cluster
MODEL_TIMEOUT_S = 30.0
MAX_LABEL_CHARS = 60
MAX_DESCRIPTION_CHARS = 300
WORD = r"(?u)\b[^\W\d_]{3,}\b"  # words of three letters or more: no numbers, no "a", "is"
# How people ask, not what about: words every kind of question uses.
ASKING = frozenset({
    "best", "does", "good", "help", "know", "like", "long", "make", "need", "want", "way",
    "tell", "explain", "please", "thanks", "use", "using",
})  # fmt: skip
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | ASKING)

PROMPT = "Here are {n} examples of tasks this user asked about:\n{examples}\n\n{ask}"
LABEL_ASK = "Name their common topic in two to four words. Answer with the topic only."
DESCRIPTION_ASK = "Describe in one sentence what these tasks are about."


def keywords(
    texts_by_cluster: Sequence[Sequence[str]], top_n: int = TOP_KEYWORDS
) -> list[list[str]]:
    """The top `top_n` c-TF-IDF terms of each cluster's texts (English stop words out)."""
    docs = [" ".join(texts) for texts in texts_by_cluster]
    if not any(d.strip() for d in docs):
        return [[] for _ in docs]
    vectorizer = CountVectorizer(stop_words=STOP_WORDS, token_pattern=WORD)
    try:
        counts = vectorizer.fit_transform(docs).toarray().astype(np.float64)
    except ValueError:  # every word a stop word
        return [[] for _ in docs]
    terms = vectorizer.get_feature_names_out()
    words = counts.sum(axis=1, keepdims=True)
    tf = counts / np.where(words == 0, 1, words)
    idf = np.log(1 + words.mean() / counts.sum(axis=0))
    scores = tf * idf
    out = []
    for row, present in zip(scores, counts > 0, strict=True):
        ranked = sorted((-s, str(t)) for s, t, p in zip(row, terms, present, strict=True) if p)
        out.append([term for _, term in ranked[:top_n]])
    return out


def keyword_label(terms: Sequence[str]) -> str:
    return " · ".join(terms[:LABEL_KEYWORDS]) or "unnamed"


def prompt(samples: Sequence[str], ask: str) -> list[Message]:
    examples = "\n".join(f"- {' '.join(s.split())[:200]}" for s in samples[:MODEL_SAMPLES])
    text = PROMPT.format(n=min(len(samples), MODEL_SAMPLES), examples=examples, ask=ask)
    return [Message("system", "You name topics briefly and plainly."), Message("user", text)]


_PREFIX = re.compile(r"^\W*(?:label|topic|the topic is|the label is|description)\s*[:\-]?\s*", re.I)


def parse_label(text: str) -> str | None:
    """A short label from the model's first line ("Label: x", "Topic: x" or just "x"); None
    when it is no label (a sentence, a number, nothing)."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    label = _PREFIX.sub("", line.strip()).strip().strip("\"'*`#.:").strip()
    words = label.split()
    if not 2 <= len(label) <= MAX_LABEL_CHARS or not 1 <= len(words) <= MAX_LABEL_WORDS:
        return None
    return label if re.search(r"[^\W\d_]{2}", label) else None


def first_sentence(text: str) -> str | None:
    body = _PREFIX.sub("", text.strip())
    sentence = re.split(r"(?<=[.!?])\s|\n", body, maxsplit=1)[0].strip()
    return sentence if sentence and len(sentence) <= MAX_DESCRIPTION_CHARS else None


_ABOUT = re.compile(r"\babout\s+([^,.;:!?]+)", re.IGNORECASE)


def label_from_description(sentence: str) -> str | None:
    """ "These tasks are about cooking and preparing food, ..." -> "cooking and preparing
    food": the small model describes far better than it names."""
    found = _ABOUT.search(sentence)
    return parse_label(found.group(1)) if found else None


async def grounded(
    backend: LLMBackend, sentence: str, keywords: Sequence[str], centroid: Sequence[float] | None,
    timeout_s: float,
) -> bool:  # fmt: skip
    """Whether the model's sentence is about the cluster: it names a keyword, or its MiniLM
    vector is near the centroid. A sentence about something else is worse than none."""
    lowered = sentence.casefold()
    if any(k.casefold() in lowered for k in keywords):
        return True
    if centroid is None:
        return False
    try:
        (vector,) = await asyncio.wait_for(backend.embed([sentence]), timeout_s)
    except Exception as exc:
        log.warning("cluster label check failed: %s", type(exc).__name__)
        return False
    a, b = np.asarray(vector, np.float64), np.asarray(centroid, np.float64)
    cosine = float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))
    return cosine >= GROUNDED_MIN_COSINE


async def _ask(
    backend: LLMBackend, messages: list[Message], max_tokens: int, request_id: str,
    timeout_s: float,
) -> str | None:  # fmt: skip
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
    try:
        done = await asyncio.wait_for(
            backend.complete(messages, params, request_id=request_id), timeout_s
        )
    except Exception as exc:  # a labeller that fails leaves the keywords; never the run
        log.warning("cluster labelling failed: %s", type(exc).__name__)
        return None
    return done.text


async def from_model(
    backend: LLMBackend, samples: Sequence[str], keywords: Sequence[str],
    centroid: Sequence[float] | None = None, *, request_id: str,
    timeout_s: float = MODEL_TIMEOUT_S,
) -> tuple[str | None, str | None] | None:  # fmt: skip
    """The model's (label, description) for a cluster's sample texts, each None where its
    answer was unusable; None for nothing at all (no answer in time, errors, off topic): the
    caller keeps the keyword label. Two short asks: a 135M model follows one instruction at a
    time far better than a two-field format; when it gives no short label, one is taken from
    its sentence ("... about X")."""
    if not samples:
        return None
    named = await _ask(backend, prompt(samples, LABEL_ASK), LABEL_MAX_TOKENS,
                       f"{request_id}:label", timeout_s)  # fmt: skip
    said = await _ask(backend, prompt(samples, DESCRIPTION_ASK), MODEL_MAX_TOKENS,
                      f"{request_id}:description", timeout_s)  # fmt: skip
    sentence = first_sentence(said) if said else None
    if sentence and not await grounded(backend, sentence, keywords, centroid, timeout_s):
        sentence = None
    label = parse_label(named) if named else None
    if label is None and sentence:
        label = label_from_description(sentence)
    return None if label is None and sentence is None else (label, sentence)
