"""A simulated user of the personalization benchmark, through the public API only: it chats,
rates each answer by its preference's checker (a like when satisfied, else a dislike with its
correction), states its preference once as an `always` note, waits for its training jobs, and
answers the held-out prompts in a fresh conversation each (greedy: the server's default)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.personalization.checkers import Preference


class BenchError(RuntimeError):
    pass


@dataclass
class Answer:
    prompt: str
    content: str
    finish_reason: str | None
    adapters: list[dict[str, Any]]


@dataclass
class Feedback:
    likes: int = 0
    corrections: int = 0
    notes: int = 0
    refused: int = 0  # answers the API would not take feedback on (reported, never hidden)
    seconds: float = 0.0
    outcomes: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return self.likes + self.corrections


def _data(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 300:
        raise BenchError(f"{what} answered {response.status_code}: {response.text[:400]}")
    return response.json()["data"]


async def ask(http: httpx.AsyncClient, prompt: str) -> tuple[Answer, str, str]:
    """One turn in a new conversation: the answer, its conversation and message ids."""
    for attempt in range(5):  # a 429/503 says when to come back; nothing else is retried
        response = await http.post("/v1/chat", json={"message": {"content": prompt}})
        if response.status_code in (429, 503) and attempt < 4:
            await asyncio.sleep(float(response.headers.get("retry-after", "2")))
            continue
        data = _data(response, "chat")
        trace = data.get("trace") or {}
        answer = Answer(prompt, data["content"], trace.get("finish_reason"), data["adapters"])
        return answer, data["conversation_id"], data["message_id"]
    raise AssertionError("unreachable")


async def answers(
    http: httpx.AsyncClient, prompts: Sequence[str], *, parallel: int
) -> list[Answer]:
    """The prompts' answers, in order, `parallel` turns at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(prompt: str) -> Answer:
        async with gate:
            return (await ask(http, prompt))[0]

    return list(await asyncio.gather(*(one(p) for p in prompts)))


async def teach(
    http: httpx.AsyncClient, preference: Preference, prompts: Sequence[str], *, note_first: bool
) -> Feedback:
    """One feedback event per prompt, in order. With `note_first`, the first one also states the
    preference as an `always` note (the instruction)."""
    fed = Feedback()
    started = time.monotonic()
    for index, prompt in enumerate(prompts):
        answer, conversation_id, message_id = await ask(http, prompt)
        body: dict[str, Any] = {"conversation_id": conversation_id, "message_id": message_id}
        if preference.satisfied(answer.content):
            body["explicit_signal"] = "like"
            fed.likes += 1
        else:
            body["explicit_signal"] = "dislike"
            body["corrected_text"] = preference.correct(answer.content)
            fed.corrections += 1
        if note_first and index == 0:
            body["explicit_signal"] = "always"
            body["notes"] = preference.description
            fed.notes += 1
        response = await http.post("/v1/preferences", json=body)
        if response.status_code == 429:
            await asyncio.sleep(float(response.headers.get("retry-after", "2")))
            response = await http.post("/v1/preferences", json=body)
        if response.status_code != 201:
            fed.refused += 1
            continue
        fed.outcomes.append(response.json()["data"]["training"]["outcome"])
    fed.seconds = time.monotonic() - started
    return fed


async def personalization(http: httpx.AsyncClient) -> dict[str, Any]:
    return dict(_data(await http.get("/v1/me/personalization"), "personalization"))


async def settle(http: httpx.AsyncClient, *, timeout_s: float) -> dict[str, Any]:
    """Waits until the user has no queued or running job; the personalization then."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = await personalization(http)
        if state["training"]["active_job"] is None:
            return state
        if time.monotonic() > deadline:
            raise BenchError(f"a training job still active after {timeout_s:.0f}s: {state}")
        await asyncio.sleep(3)


async def jobs(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The user's training jobs, oldest first."""
    page = _data(await http.get("/v1/training/jobs", params={"limit": 50}), "training jobs")
    return sorted(page["items"], key=lambda job: job["created_at"])


async def drop_instructions(http: httpx.AsyncClient) -> int:
    state = await personalization(http)
    for item in state["instructions"]:
        path = f"/v1/me/personalization/instructions/{item['id']}"
        _data(await http.delete(path), "deleting an instruction")
    return len(state["instructions"])
