"""Answer faithfulness of grounded answers through the real model (issue 21), part of
`make bench-rag`; alone: `python -m bench.rag_answers`.

The eval set's questions (`bench/data/rag_eval.jsonl`, every `BENCH_RAG_ANSWER_EVERY`-th one:
2 CPUs answer a few a minute) and the no-evidence questions (`rag_no_evidence.jsonl`, all of
them) are put to `rag.answer_with_context_v1` itself: hybrid retrieval over the Python Language
Reference chunks (400/50 tokens), the evidence threshold, the numbered-sources prompt fitted to the
window, and SmolLM2 answering through the inference service's HTTP app (in-process, over
`LocalInferenceBackend`, so `copy_from` travels as it does in production), once with copy-aware
decoding off ("before") and once on ("after"), with the chat's settings (temperature, top-k,
minimum similarity) and `BENCH_RAG_ANSWER_TOKENS` new tokens at most.

Figures, before and after:
- exact-phrase rate: the share of eval answers holding their key phrase
  (`bench/data/rag_key_phrases.jsonl`) exactly (case and all; white space collapsed);
- no-evidence answer rate: the share of no-evidence questions answered with the tool's
  no-evidence reply or a refusal ("the sources do not contain...", `REFUSAL`); it must not fall.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench.rag_eval_set import load_key_phrases, load_no_evidence, load_questions, squash
from functions.inference.app import create_app
from functions.inference.runtime import Runtime
from shared.domain.llm.backend import GenerationParams
from shared.domain.llm.local import LocalInferenceBackend
from shared.domain.rag.retrieval import Retriever
from shared.domain.tools.base import ToolContext
from shared.domain.tools.grounded import answer_with_context
from shared.platform.settings import Settings

EVERY = int(os.environ.get("BENCH_RAG_ANSWER_EVERY", "3"))
MAX_TOKENS = int(os.environ.get("BENCH_RAG_ANSWER_TOKENS", "128"))
# Default: the chat's own (CHAT_TEMPERATURE); sampled runs use seed 0, the same before and after.
TEMPERATURE = os.environ.get("BENCH_RAG_ANSWER_TEMPERATURE")
# How an answer says its sources do not hold the answer (the prompt asks it to say so).
REFUSAL = re.compile(
    r"\b(?:can ?not|can't|could ?not|couldn't|unable to|not able to) (?:find|answer|determine"
    r"|provide|tell)|\b(?:do|does|did) not (?:contain|mention|provide|include|say|specify|cover)"
    r"|\b(?:don't|doesn't|didn't) (?:contain|mention|provide|include|say|specify|cover)"
    r"|\bno (?:information|mention|relevant)|\bnot (?:mentioned|provided|specified|covered"
    r"|included|stated) in\b|\bnot (?:related|relevant) to\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Asked:
    id: str
    question: str
    key_phrase: str | None  # None: a no-evidence question


@dataclass(frozen=True)
class Answered:
    asked: Asked
    copy_aware: bool
    answer: str
    finish_reason: str

    @property
    def exact(self) -> bool:
        return self.asked.key_phrase is not None and self.asked.key_phrase in squash(self.answer)

    @property
    def refused(self) -> bool:
        return self.finish_reason == "no_evidence" or bool(REFUSAL.search(self.answer))


def eval_subset(every: int = EVERY) -> list[Asked]:
    """Every `every`-th eval question (the first, the `every`+1-th...): a fixed subset."""
    phrases = load_key_phrases()
    return [Asked(q.id, q.question, phrases[q.id]) for q in load_questions()[::every]]


def no_evidence_questions() -> list[Asked]:
    return [Asked(qid, question, None) for qid, question in load_no_evidence()]


def rates(answers: Sequence[Answered], copy_aware: bool) -> dict[str, float]:
    mine = [a for a in answers if a.copy_aware == copy_aware]
    graded = [a for a in mine if a.asked.key_phrase is not None]
    off_corpus = [a for a in mine if a.asked.key_phrase is None]
    return {
        "exact": sum(a.exact for a in graded) / max(1, len(graded)),
        "eval_refused": sum(a.refused for a in graded) / max(1, len(graded)),
        "no_evidence": sum(a.refused for a in off_corpus) / max(1, len(off_corpus)),
        "retrieval_gate": sum(a.finish_reason == "no_evidence" for a in off_corpus)
        / max(1, len(off_corpus)),
    }


def temperature(settings: Settings) -> float:
    return settings.chat_temperature if TEMPERATURE is None else float(TEMPERATURE)


class InProcessInference:
    """The inference service's app over a loaded runtime, reached through httpx in-process."""

    def __init__(self, settings: Settings):
        self.settings = settings.model_copy(
            update={"inference_adapter_slots": 0, "inference_url": "http://inference.bench"}
        )
        self.runtime = Runtime(self.settings)

    async def __aenter__(self) -> LocalInferenceBackend:
        started = time.perf_counter()
        await asyncio.to_thread(self.runtime.load)
        if not self.runtime.ready.is_set():
            raise RuntimeError(f"the inference runtime did not load: {self.runtime.load_error}")
        print(f"  inference runtime ready in {time.perf_counter() - started:.0f} s")
        transport = httpx.ASGITransport(app=create_app(self.runtime))
        self.backend = LocalInferenceBackend(self.settings, transport=transport)
        return self.backend

    async def __aexit__(self, *exc: object) -> None:
        await self.backend.aclose()
        if self.runtime.engine is not None:
            self.runtime.engine.stop(drain=False)
        await self.runtime.close()


async def ask(
    backend: LocalInferenceBackend, retriever: Retriever, settings: Settings, user_id: str,
    context_id: str, asked: Asked, copy_aware: bool,
) -> Answered:  # fmt: skip
    generation = GenerationParams(temperature=temperature(settings), max_tokens=MAX_TOKENS, seed=0)
    rag: dict[str, Any] = {"top_k": settings.rag_top_k,
                           "min_similarity": settings.rag_min_similarity,
                           "copy_aware": copy_aware}  # fmt: skip
    ctx = ToolContext(
        user_id=user_id, request_id=uuid.uuid4().hex, backend=backend, stream=False,
        extras={"generation": generation, "retriever": retriever, "rag": rag},
    )  # fmt: skip
    done = await answer_with_context({"question": asked.question, "contexts": [context_id]}, ctx)
    return Answered(asked, copy_aware, str(done["answer"]), str(done["finish_reason"]))


async def faithfulness(
    pool: Any, settings: Settings, user_id: str, context_id: str, *, every: int = EVERY
) -> list[Answered]:
    """Every question of the subset and every no-evidence question, copy-aware off and on,
    `settings.inference_slots` at a time (the engine batches them)."""
    questions = eval_subset(every) + no_evidence_questions()
    async with InProcessInference(settings) as backend:
        embed_cache: dict[str, list[float]] = {}

        async def embed(text: str) -> list[float]:
            if text not in embed_cache:
                embed_cache[text] = (await backend.embed([text]))[0]
            return embed_cache[text]

        retriever = Retriever(pool, embed)
        gate = asyncio.Semaphore(settings.inference_slots)
        started, done = time.perf_counter(), 0

        async def one(asked: Asked, copy_aware: bool) -> Answered:
            nonlocal done
            async with gate:
                answered = await ask(backend, retriever, settings, user_id, context_id, asked,
                                     copy_aware)  # fmt: skip
            done += 1
            if done % 20 == 0:
                print(f"  {done}/{2 * len(questions)} answers"
                      f" ({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
            return answered

        return list(await asyncio.gather(*(one(q, on) for q in questions for on in (False, True))))


def report(answers: Sequence[Answered], settings: Settings, every: int = EVERY) -> None:
    graded = {a.asked.id for a in answers if a.asked.key_phrase is not None}
    off_corpus = {a.asked.id for a in answers if a.asked.key_phrase is None}
    print(f"\nanswer faithfulness through SmolLM2 ({len(graded)} eval questions: every {every}th"
          f" of the set; {len(off_corpus)} no-evidence questions; temperature"
          f" {temperature(settings)}; at most {MAX_TOKENS} new tokens):")  # fmt: skip
    for label, on in (("before (copy-aware off)", False), ("after (copy-aware on)", True)):
        r = rates(answers, on)
        print(f"  {label:>24}: key phrase exactly {r['exact']:.1%};"
              f" no-evidence answered as such {r['no_evidence']:.1%}"
              f" ({r['retrieval_gate']:.1%} stopped by the evidence threshold);"
              f" eval questions refused {r['eval_refused']:.1%}")  # fmt: skip
    if os.environ.get("BENCH_RAG_ANSWER_DUMP"):
        dump(answers, os.environ["BENCH_RAG_ANSWER_DUMP"])
    pairs: dict[str, dict[bool, Answered]] = {}
    for a in answers:
        pairs.setdefault(a.asked.id, {})[a.copy_aware] = a
    changed = [p for p in pairs.values() if p[False].answer != p[True].answer]
    gained = sum(p[True].exact and not p[False].exact for p in pairs.values())
    lost = sum(p[False].exact and not p[True].exact for p in pairs.values())
    print(f"  answers that differ between the two: {len(changed)} of {len(pairs)};"
          f" key phrase gained {gained}, lost {lost}")  # fmt: skip
    for p in changed[:5]:
        print(f"    {p[True].asked.id}: {p[False].answer[:110]!r}\n"
              f"    {'':>{len(p[True].asked.id)}}  {p[True].answer[:110]!r}")  # fmt: skip


def dump(answers: Sequence[Answered], path: str) -> None:
    """Every answer as a JSON line (BENCH_RAG_ANSWER_DUMP), to read what changed."""
    with open(path, "w", encoding="utf-8") as out:
        for a in answers:
            row = {"id": a.asked.id, "copy_aware": a.copy_aware, "key_phrase": a.asked.key_phrase,
                   "exact": a.exact, "refused": a.refused, "finish_reason": a.finish_reason,
                   "answer": a.answer}  # fmt: skip
            out.write(json.dumps(row) + "\n")


def main() -> None:
    # Alone: a throwaway database with the corpus at the default window, then the answers.
    from bench.rag import answers_alone  # here: bench.rag imports this module

    answers_alone()


if __name__ == "__main__":
    main()
