"""`rag.answer_with_context_v1`: an answer grounded in the user's knowledge contexts, with
citations.

Retrieve (hybrid, ACL-filtered) → keep the chunks similar enough to count as evidence → put
as many as fit the model's context window into a numbered-sources prompt → answer → cite the
sources the answer marks as [n] (all the sources it was given when it marks none). With no
evidence the answer says so and cites nothing: a citation is never invented.

Faithfulness (issue 21): the answer is decoded copy-aware over the sources it was given (the
backend's `copy_from`; names, numbers and terms it copies come out exactly as there; `rag`
extras' `copy_aware: false` turns it off), and each citation carries `quote`, the sentence of its
passage, verbatim, that shares the most words with what the answer says citing it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shared.domain.llm.backend import Message
from shared.domain.rag.retrieval import Hit
from shared.domain.tools.base import ToolContext
from shared.domain.tools.builtins import DEFAULT_SYSTEM_PROMPT, answer, generation_params
from shared.platform.errors import PayloadTooLarge

NO_EVIDENCE = (
    "I couldn't find anything about that in the selected knowledge, so I can't answer it "
    "from your files."
)
INSTRUCTION = (
    "Answer the question using only the numbered sources above. Cite the sources you use "
    "like [1]. If they do not contain the answer, say so."
)
MAX_FIT_ROUNDS = 8
SNIPPET_CHARS = 300
_MARK = re.compile(r"\[(\d{1,2})\]")
# A sentence ends at . ! ? followed by white space, or at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_ANSWER_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9_]+")
# Words too common to say which sentence supports an answer.
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from",
    "has", "have", "if", "in", "into", "is", "it", "its", "of", "on", "or", "that", "the",
    "their", "then", "there", "these", "this", "to", "was", "were", "when", "which", "while",
    "will", "with", "you", "your", "i", "we", "they", "he", "she", "what", "how", "why", "where",
    "who",
))  # fmt: skip


def _label(number: int, hit: Hit) -> str:
    where = hit.path + (f" > {hit.heading}" if hit.heading else "")
    return f"[{number}] {where}" + (f", page {hit.page}" if hit.page else "")


def grounded_messages(
    ctx: ToolContext, question: str, hits: Sequence[Hit], texts: Sequence[str], *,
    history: bool,
) -> list[Message]:  # fmt: skip
    pairs = enumerate(zip(hits, texts, strict=False), 1)  # texts may be fewer (trimmed)
    sources = "\n\n".join(f"{_label(i, h)}\n{t}" for i, (h, t) in pairs)
    prompt = f"Sources:\n\n{sources}\n\n{INSTRUCTION}\n\nQuestion: {question}"
    return [
        Message("system", ctx.system_prompt or DEFAULT_SYSTEM_PROMPT),
        *(ctx.history if history else ()),
        Message("user", prompt),
    ]


async def fit_sources(
    ctx: ToolContext, question: str, hits: Sequence[Hit]
) -> tuple[list[Message], int]:
    """The prompt with as many sources as fit beside the answer's token budget (counted by the
    model's own tokenizer), and how many it holds. History goes first, then the weakest
    sources; the last kept source may be cut short."""
    reserve = generation_params(ctx).max_tokens
    texts, history = [h.content for h in hits], bool(ctx.history)
    for _ in range(MAX_FIT_ROUNDS):
        messages = grounded_messages(ctx, question, hits, texts, history=history)
        counted = await ctx.backend.count_tokens(messages)
        over = counted.count - (counted.context_window - reserve)
        if over <= 0:
            return messages, len(texts)
        if history:
            history = False
            continue
        chars_per_token = sum(len(m.content) for m in messages) / max(1, counted.count)
        cut = int(over * chars_per_token * 1.15) + 8
        if len(texts[-1]) - cut >= 120:
            texts[-1] = texts[-1][: len(texts[-1]) - cut].rstrip() + " …"
        elif len(texts) > 1:
            texts.pop()
        else:
            break
    raise PayloadTooLarge(
        "the question leaves no room for sources in the model's context window; shorten it"
    )


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and not w.isdigit()}


def sentences(text: str) -> list[str]:
    """The passage's sentences, each verbatim (line breaks inside it kept), blanks dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def supporting_quote(passage: str, claim: str) -> str | None:
    """The passage's sentence sharing the most content words with `claim` (the first of equals),
    verbatim; None when no sentence shares any."""
    wanted = content_words(_MARK.sub(" ", claim))
    best, best_score = None, 0
    for sentence in sentences(passage):
        score = len(wanted & content_words(sentence))
        if score > best_score:
            best, best_score = sentence, score
    return best


def claim_citing(answer_text: str, number: int) -> str:
    """What the answer says citing source `number`: its sentences marked [number], or all of it
    when it marks none (then every source is cited for the whole answer)."""
    parts = [p for p in _ANSWER_SENTENCE_END.split(answer_text) if p.strip()]
    marked = []
    for i, part in enumerate(parts):
        if f"[{number}]" in part:
            # A mark standing after the full stop ("... tall. [1]") cites the sentence before.
            bare = not content_words(_MARK.sub(" ", part))
            marked.append(parts[i - 1] + " " + part if bare and i else part)
    return " ".join(marked) if marked else answer_text


def citation(hit: Hit, quote: str | None = None) -> dict[str, Any]:
    return {
        "type": "citation", "text": hit.content[:SNIPPET_CHARS], "quote": quote,
        "source_id": hit.file_id,
        "chunk_id": hit.chunk_id, "path": hit.path, "score": round(hit.similarity, 4),
        "meta": {"context_id": hit.context_id, "heading": hit.heading, "page": hit.page,
                 "chunk_index": hit.chunk_index, "start": hit.start, "end": hit.end},
    }  # fmt: skip


def cited_numbers(text: str, count: int) -> list[int]:
    marked = sorted({int(m) for m in _MARK.findall(text) if 1 <= int(m) <= count})
    return marked or list(range(1, count + 1))


async def answer_with_context(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
    retriever = ctx.extras["retriever"]
    rag = ctx.extras.get("rag") or {}
    question = str(inputs["question"])
    hits = await retriever.search(
        ctx.user_id, list(inputs.get("contexts") or []), question, k=int(rag.get("top_k", 5))
    )
    evidence = [h for h in hits if h.similarity >= float(rag.get("min_similarity", 0.25))]
    if not evidence:
        if ctx.stream:
            await ctx.emit("token", NO_EVIDENCE)
        return {"answer": NO_EVIDENCE, "citations": [], "finish_reason": "no_evidence"}
    messages, kept = await fit_sources(ctx, question, evidence)
    if rag.get("copy_aware", True):
        sources = tuple(h.content for h in evidence[:kept])
        generation = generation_params(ctx, copy_from=sources)
        ctx = dataclasses.replace(ctx, extras={**ctx.extras, "generation": generation})
    text, finish_reason = await answer(ctx, messages)
    citations = [
        citation(evidence[n - 1], supporting_quote(evidence[n - 1].content,
                                                   claim_citing(text, n)))
        for n in cited_numbers(text, kept)
    ]  # fmt: skip
    return {"answer": text, "citations": citations, "finish_reason": finish_reason}
