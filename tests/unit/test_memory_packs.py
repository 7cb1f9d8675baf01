"""Working memory's window arithmetic (`shared.domain.chat.memory`) with a fake backend that counts
one token per word: folding to fit, and summarising a long fold in packs that each fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from shared.domain.chat.memory import Turn, WorkingMemory, fit, summarize_in_packs
from shared.domain.llm.backend import LLMBackend, Message, TokenCount
from shared.platform.errors import PayloadTooLarge


class WordCounter:
    def __init__(self, window: int):
        self.window, self.calls = window, 0

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount:
        self.calls += 1
        words = sum(len(m.content.split()) + 2 for m in messages)
        return TokenCount(count=words, context_window=self.window, exact=True)


def turns(*sizes: int) -> list[Turn]:
    return [Turn(f"t{i}", "user", " ".join(["w"] * n), i) for i, n in enumerate(sizes, 1)]


def prompt_of(summary: str | None, pack: Sequence[Turn]) -> list[Message]:
    head = [Message("system", summary)] if summary else []
    return head + [Message(t.role, t.content) for t in pack]


async def packs_for(window: int, sizes: list[int], answer: int) -> list[list[str]]:
    seen: list[list[str]] = []

    async def once(summary: str | None, pack: Sequence[Turn]) -> str:
        seen.append([t.id for t in pack])
        return "sum mary"  # two words carried forward

    backend = cast(LLMBackend, WordCounter(window))
    await summarize_in_packs(None, turns(*sizes), backend=backend, prompt_of=prompt_of,
                             answer_tokens=answer, once=once)  # fmt: skip
    return seen


async def test_a_fold_that_fits_is_one_call() -> None:
    assert await packs_for(100, [10, 10, 10], answer=20) == [["t1", "t2", "t3"]]


async def test_a_fold_too_long_for_one_prompt_is_summarised_in_packs() -> None:
    # 50 words of window left after the answer; each turn costs 22, the summary 4.
    assert await packs_for(70, [20, 20, 20, 20, 20], answer=20) == [
        ["t1", "t2"], ["t3", "t4"], ["t5"],
    ]  # fmt: skip


async def test_a_turn_too_long_on_its_own_is_cut_to_fit() -> None:
    seen: list[Sequence[Turn]] = []

    async def once(summary: str | None, pack: Sequence[Turn]) -> str:
        seen.append(pack)
        return "short"

    backend = cast(LLMBackend, WordCounter(60))
    await summarize_in_packs(None, turns(200, 5), backend=backend, prompt_of=prompt_of,
                             answer_tokens=20, once=once)  # fmt: skip
    first = seen[0]
    assert [t.id for t in first] == ["t1"] and len(first[0].content.split()) <= 38
    assert [t.id for t in seen[1]] == ["t2"]


async def test_fit_folds_the_oldest_turns_until_the_prompt_fits() -> None:
    memory = WorkingMemory(head="t6", turns=turns(30, 30, 30, 30, 30, 30))
    persisted: list[tuple[str, str]] = []

    async def summarize(summary: str | None, folded: Sequence[Turn]) -> str:
        return f"summary of {len(folded)}"

    async def persist(text: str, last: Turn) -> None:
        persisted.append((text, last.id))

    backend = cast(LLMBackend, WordCounter(150))
    count = await fit(
        memory, backend=backend, reserve_tokens=30, summarize=summarize, persist=persist,
        prompt=lambda m: [Message("system", m.system_prompt("base")), *m.messages()],
    )  # fmt: skip
    assert count <= 120 and memory.folds == 1 and memory.summary == persisted[0][0]
    assert [t.id for t in memory.turns] == ["t5", "t6"][-len(memory.turns) :]
    assert persisted[0][1] == f"t{6 - len(memory.turns)}"


async def test_a_message_too_long_for_the_window_is_refused() -> None:
    memory = WorkingMemory(head=None)

    async def never(*args: Any) -> Any:
        raise AssertionError("nothing to fold")

    with pytest.raises(PayloadTooLarge):
        await fit(
            memory, backend=cast(LLMBackend, WordCounter(50)), reserve_tokens=10,
            summarize=never, persist=never,
            prompt=lambda m: [Message("user", " ".join(["w"] * 100))],
        )  # fmt: skip
