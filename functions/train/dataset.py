"""A job's dataset: its feedback events as training samples, and what is written to the object
store (`dataset.jsonl` and `manifest.json` under the adapter's `train_jobs/{job}/`).

Each event becomes one sample (docs/model.md, "Training: the job"):
- the **prompt** is the conversation as the chat rendered it when the rated answer was made:
  the system prompt the chat uses (with the rolling summary, if the branch has one), then the
  turns of the answer's branch up to the user message it replied to (working memory's own
  rebuild, as the event's own user: a skill job's events are many users'), rendered through
  the inference service's chat template by `TrainingSample`;
- the **target**: a correction (preferred; the alternative is the original answer), else a
  liked (or `always`) answer (preferred), else a disliked (or `never`) answer (undesirable);
  the alternative of the last two is the base model's answer, generated for held-out events
  only (alignment is measured on them alone);
- the **weight**: |score| (1 for a correction: the user wrote the text); weight 0 is no
  sample.
Duplicates are dropped, the newest kept: one sample per (conversation, message), and one per
identical (prompt, target, kind). Samples are capped at `max_tokens` when encoded (the prompt
cut from the left); the dataset row records what was kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.domain.chat.memory import MemoryStore
from shared.domain.preferences.jobs import Job, TrainingEvent
from shared.domain.preferences.store import POSITIVE
from shared.neural.tokenizer import ChatMessage, ChatTokenizer
from shared.neural.training import PREFERRED, UNDESIRABLE, TrainingSample
from shared.neural.training.samples import encode_sample
from shared.platform.db.pool import Pool

FORMAT = "train-dataset/1"
Messages = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Row:
    event_id: int
    conversation_id: str
    message_id: str
    signal: str
    sample: TrainingSample
    context: str | None
    updated_at: dt.datetime
    user_id: str | None = None  # whose feedback


@dataclass(frozen=True)
class Skipped:
    event_id: int
    reason: str


async def prompts_of(
    pool: Pool, memory: MemoryStore, job: Job, events: Sequence[TrainingEvent], *,
    system_prompt: str,
) -> dict[int, Messages]:  # fmt: skip
    """Each event's prompt as chat messages (system first), rebuilt from its answer's branch
    (one connection at a time: the rebuild takes its own); an answer with no parent (written
    outside a chat turn) gets its context as the one user turn; one with neither is absent."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT id::text, parent_id::text FROM message WHERE id = ANY(%s::uuid[])",
            ([e.message_id for e in events],),
        )
        parents = dict(await cursor.fetchall())
    prompts: dict[int, Messages] = {}
    for event in events:
        head = parents.get(event.message_id)
        owner = event.user_id or job.user_id
        if head is not None and owner is not None:
            memory_ = await memory.rebuild(owner, event.conversation_id, head)
            turns = tuple((t.role, t.content) for t in memory_.turns)
            system = memory_.system_prompt(system_prompt)
        elif event.context_text:
            turns, system = (("user", event.context_text),), system_prompt
        else:
            continue
        if turns:
            prompts[event.id] = (("system", system), *turns)
    return prompts


def rows_of(
    events: Sequence[TrainingEvent], prompts: Mapping[int, Messages]
) -> tuple[list[Row], list[Skipped]]:
    """Samples oldest first (what `holdout_split` wants), deduplicated (newest kept)."""
    rows: list[Row] = []
    skipped: list[Skipped] = []
    seen_messages: set[tuple[str, str]] = set()
    seen_samples: set[tuple[Messages, str, str]] = set()
    for event in sorted(events, key=lambda e: (e.updated_at, e.id), reverse=True):
        messages = prompts.get(event.id)
        if messages is None:
            skipped.append(Skipped(event.id, "no prompt: the answer's conversation is gone"))
            continue
        sample = sample_of(event, messages)
        if sample is None:
            skipped.append(Skipped(event.id, "weight 0 or an empty target"))
            continue
        message_key = (event.conversation_id, event.message_id)
        sample_key = (messages, sample.target, sample.kind)
        if message_key in seen_messages or sample_key in seen_samples:
            skipped.append(Skipped(event.id, "duplicate of a newer event"))
            continue
        seen_messages.add(message_key)
        seen_samples.add(sample_key)
        rows.append(Row(event.id, event.conversation_id, event.message_id, event.explicit_signal,
                        sample, event.context_text, event.updated_at, event.user_id))  # fmt: skip
    rows.reverse()
    return rows, skipped


def sample_of(event: TrainingEvent, messages: Messages) -> TrainingSample | None:
    correction = (event.corrected_text or "").strip()
    answer = event.answer.strip()
    if correction:
        return TrainingSample(
            target=correction, kind=PREFERRED, messages=messages, weight=1.0,
            alternative=answer if answer and answer != correction else None,
        )  # fmt: skip
    weight = abs(event.score) if event.score is not None else 1.0
    if not answer or weight == 0:
        return None
    kind = PREFERRED if event.explicit_signal in POSITIVE else UNDESIRABLE
    return TrainingSample(target=answer, kind=kind, messages=messages, weight=weight)


def encode(rows: Sequence[Row], tokenizer: ChatTokenizer, *, max_tokens: int) -> list[bytes]:
    """The dataset's JSON lines: SPEC's fields (prompt, target, weight, context,
    conversation_id, message_id) and what training saw of them."""
    lines = []
    for row in rows:
        sample = row.sample
        prompt = tokenizer.chat_prompt([ChatMessage(role, text) for role, text in sample.messages])
        encoded = encode_sample(sample, tokenizer, max_tokens=max_tokens)
        line = {
            "prompt": prompt, "target": sample.target, "weight": sample.weight,
            "context": row.context, "conversation_id": row.conversation_id,
            "message_id": row.message_id, "event_id": row.event_id, "kind": sample.kind,
            "signal": row.signal, "alternative": sample.alternative,
            "tokens": {"prompt": encoded.target_start, "target": encoded.target_tokens,
                       "truncated": encoded.truncated},
        }  # fmt: skip
        lines.append(json.dumps(line, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return lines


def manifest(
    job: Job, rows: Sequence[Row], skipped: Sequence[Skipped], heldout: Sequence[Row],
    dataset: bytes, *, max_tokens: int, gate: float, system_prompt: str,
) -> bytes:  # fmt: skip
    """Where every row came from (whose feedback: a skill job's are many users'), what was
    left out and why, and the split."""
    held = {row.event_id for row in heldout}
    body = {
        "format": FORMAT, "job_id": job.id, "adapter_id": job.adapter_id, "user_id": job.user_id,
        "kind": job.kind, "cluster_ids": list(job.cluster_ids), "attempt": job.attempt,
        "base_version": job.base_version, "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "dataset_sha256": hashlib.sha256(dataset).hexdigest(), "rows": len(rows),
        "max_tokens": max_tokens, "gate": gate,
        "system_prompt_sha256": hashlib.sha256(system_prompt.encode()).hexdigest(),
        "sources": [
            {"event_id": r.event_id, "user_id": r.user_id, "conversation_id": r.conversation_id,
             "message_id": r.message_id, "signal": r.signal, "kind": r.sample.kind,
             "updated_at": r.updated_at.isoformat(),
             "split": "heldout" if r.event_id in held else "train"}
            for r in rows
        ],
        "skipped": [{"event_id": s.event_id, "reason": s.reason} for s in skipped],
    }  # fmt: skip
    return json.dumps(body, indent=2, sort_keys=True).encode()
