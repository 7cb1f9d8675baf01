"""`rag.answer_with_context_v1`: an answer grounded in the user's knowledge contexts, with
citations.

Retrieve (hybrid, ACL-filtered) → keep the chunks similar enough to count as evidence → put
as many as fit the model's context window into a numbered-sources prompt → answer → cite the
sources the answer marks as [n] (all the sources it was given when it marks none). With no
evidence the answer says so and cites nothing: a citation is never invented.
"""

from __future__ import annotations

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


def citation(hit: Hit) -> dict[str, Any]:
    return {
        "type": "citation", "text": hit.content[:SNIPPET_CHARS], "source_id": hit.file_id,
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
    text, finish_reason = await answer(ctx, messages)
    citations = [citation(evidence[n - 1]) for n in cited_numbers(text, kept)]
    return {"answer": text, "citations": citations, "finish_reason": finish_reason}
