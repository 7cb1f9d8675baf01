"""Working memory of a conversation: the turns on the branch being answered,
after the newest rolling summary, kept within the model's context window.

- The branch is the chain of parents from the message being answered up to the root, so a
  regenerated or edited turn sees its own history, not its siblings'.
- A summary is a `message` row (sender `system`, role `summary`) whose parent is the last turn
  it covers; it is written by the model (`memory.summarize_v1`) when the prompt would overflow.
- Hot state lives in Redis (`chat:memory:{conversation}`), tagged with the head message it
  ends at; any other head, or a miss, rebuilds it from Postgres. Nothing here is only in Redis.
- Budgets are token counts from the backend (the served model's own tokenizer and template).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.domain.chat import conversations
from shared.domain.llm.backend import LLMBackend, Message, TokenCount
from shared.platform.db.pool import Pool
from shared.platform.errors import PayloadTooLarge

SUMMARY_ROLE = "summary"
MAX_FOLDS = 3

_BRANCH = """
WITH RECURSIVE chain AS (
  SELECT m.id, m.parent_id, m.sender, m.role, m.content, m.seq, 1 AS depth
    FROM message m JOIN conversation c ON c.id = m.conversation_id
   WHERE m.id = %(head)s AND m.conversation_id = %(conversation)s AND c.user_id = %(user)s
  UNION ALL
  SELECT m.id, m.parent_id, m.sender, m.role, m.content, m.seq, chain.depth + 1
    FROM message m JOIN chain ON m.id = chain.parent_id
   WHERE chain.depth < %(limit)s
)
SELECT id::text, sender, role, content, seq FROM chain ORDER BY seq
"""

_SUMMARY = """
SELECT content, parent_id::text, (meta->>'covers_until_seq')::int FROM message
 WHERE conversation_id = %s AND role = 'summary' AND parent_id = ANY(%s::uuid[])
 ORDER BY seq DESC LIMIT 1
"""


@dataclass(frozen=True)
class Turn:
    id: str
    role: str  # user | assistant
    content: str
    seq: int


@dataclass
class WorkingMemory:
    head: str | None
    summary: str | None = None
    turns: list[Turn] = field(default_factory=list)
    folds: int = 0  # summaries written for this request

    def messages(self) -> list[Message]:
        """The turns; the summary goes into the system prompt (`system_prompt`), since a
        small model follows one system turn far better than a second one mid-conversation."""
        return [Message(t.role, t.content) for t in self.turns]

    def system_prompt(self, base: str) -> str:
        if not self.summary:
            return base
        return f"{base}\n\nSummary of the earlier conversation: {self.summary}"

    def to_json(self) -> str:
        return json.dumps(
            {"head": self.head, "summary": self.summary, "turns": [asdict(t) for t in self.turns]}
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkingMemory:
        data = json.loads(raw)
        return cls(data["head"], data["summary"], [Turn(**t) for t in data["turns"]])


Summarizer = Callable[[str | None, Sequence[Turn]], Awaitable[str]]


class MemoryStore:
    def __init__(self, *, pool: Pool, redis: Any, max_turns: int = 40, ttl_s: int = 86400):
        self.pool, self.redis, self.max_turns, self.ttl_s = pool, redis, max_turns, ttl_s

    @staticmethod
    def _key(conversation_id: str) -> str:
        return f"chat:memory:{conversation_id}"

    async def load(self, user_id: str, conversation_id: str, head: str | None) -> WorkingMemory:
        """The memory ending at `head` (None: a new conversation): Redis when it holds that
        head, else rebuilt from Postgres and cached."""
        if head is None:
            return WorkingMemory(head=None)
        cached = await self.redis.get(self._key(conversation_id))
        if cached:
            memory = WorkingMemory.from_json(cached)
            if memory.head == head:
                return memory
        memory = await self.rebuild(user_id, conversation_id, head)
        await self.save(conversation_id, memory)
        return memory

    async def rebuild(self, user_id: str, conversation_id: str, head: str) -> WorkingMemory:
        async with self.pool.connection() as conn:
            params = {"head": head, "conversation": conversation_id, "user": user_id,
                      "limit": 4 * self.max_turns + 50}  # fmt: skip
            rows = await (await conn.execute(_BRANCH, params)).fetchall()
            ids = [row[0] for row in rows]
            summary = await (await conn.execute(_SUMMARY, (conversation_id, ids))).fetchone()
        covered = summary[2] if summary else 0
        turns = [
            Turn(id=row[0], role=row[1], content=row[3], seq=row[4])
            for row in rows
            if row[1] in ("user", "assistant") and row[4] > covered
        ]
        return WorkingMemory(
            head=head, summary=summary[0] if summary else None, turns=turns[-self.max_turns :]
        )

    async def save(self, conversation_id: str, memory: WorkingMemory) -> None:
        await self.redis.set(self._key(conversation_id), memory.to_json(), ex=self.ttl_s)

    async def write_summary(
        self, user_id: str, conversation_id: str, *, text: str, last: Turn
    ) -> None:
        async with self.pool.connection() as conn:
            await conversations.append_message(
                conn, user_id, conversation_id, sender="system", role=SUMMARY_ROLE,
                content=text, parent_id=last.id,
                meta={"summary": True, "covers_until_seq": last.seq},
            )  # fmt: skip


async def fit(
    memory: WorkingMemory,
    *,
    prompt: Callable[[WorkingMemory], list[Message]],
    backend: LLMBackend,
    reserve_tokens: int,
    summarize: Summarizer,
    persist: Callable[[str, Turn], Awaitable[None]],
) -> int:
    """Folds the oldest turns into the rolling summary until `prompt(memory)` plus
    `reserve_tokens` (the answer's budget) fits the context window. Returns the prompt's token
    count. A single message too long for the window is refused (413)."""
    for _ in range(MAX_FOLDS + 1):
        counted = await backend.count_tokens(prompt(memory))
        budget = counted.context_window - reserve_tokens
        if counted.count <= budget:
            return counted.count
        if memory.folds >= MAX_FOLDS or not memory.turns:
            break
        # Keep the newest turns that fit in half the budget (shares by characters: one count
        # call per fold instead of one per turn), fold the rest, then count again exactly.
        chars = [len(t.content) + 16 for t in memory.turns]
        per_char = counted.count / max(1, sum(chars) + len(memory.summary or ""))
        keep, used = 0, 0.0
        for size in reversed(chars):
            if used + size * per_char > budget / 2:
                break
            used, keep = used + size * per_char, keep + 1
        fold = memory.turns[: max(1, len(memory.turns) - keep)]
        memory.summary = await summarize(memory.summary, fold)
        await persist(memory.summary, fold[-1])
        memory.turns = memory.turns[len(fold) :]
        memory.folds += 1
    raise PayloadTooLarge(
        f"the conversation does not fit the model's context window of "
        f"{counted.context_window} tokens with {reserve_tokens} left for the answer; "
        "shorten the message",
        details={"prompt_tokens": counted.count, "context_window": counted.context_window},
    )


PromptOf = Callable[[str | None, Sequence[Turn]], list[Message]]
CLIP_TRIES = 3


async def summarize_in_packs(
    summary: str | None,
    turns: Sequence[Turn],
    *,
    backend: LLMBackend,
    prompt_of: PromptOf,
    answer_tokens: int,
    once: Summarizer,
) -> str:
    """Folds `turns` into `summary` with as few summarizer calls as the window allows: each
    call's prompt (`prompt_of(summary so far, pack)`) plus `answer_tokens` must fit, so the
    many long turns of one fold become several calls, each carrying the summary forward. A
    turn too long on its own is cut to fit (it is being summarised, not answered)."""
    pending = list(turns)
    while pending:
        pack = await _largest_pack(summary, pending, backend, prompt_of, answer_tokens)
        summary = await once(summary, pack)
        pending = pending[len(pack) :]
    return summary or ""


async def _largest_pack(
    summary: str | None, pending: list[Turn], backend: LLMBackend, prompt_of: PromptOf,
    answer_tokens: int,
) -> list[Turn]:  # fmt: skip
    async def count(pack: Sequence[Turn]) -> TokenCount:
        return await backend.count_tokens(prompt_of(summary, pack))

    def fits(counted: TokenCount) -> bool:
        return counted.count + answer_tokens <= counted.context_window

    low, high = 0, len(pending)  # the longest fitting prefix, by bisection (fit is monotone)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(await count(pending[:middle])):
            low = middle
        else:
            high = middle - 1
    if low:
        return pending[:low]
    turn = pending[0]
    for _ in range(CLIP_TRIES):
        counted = await count([turn])
        if fits(counted):
            return [turn]
        room = max(0, counted.context_window - answer_tokens)
        keep = int(len(turn.content) * room / max(1, counted.count) * 0.9)
        turn = Turn(turn.id, turn.role, turn.content[:keep], turn.seq)
    raise PayloadTooLarge("a turn does not fit the summarizer's context window")
