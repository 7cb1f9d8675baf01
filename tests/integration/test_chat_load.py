"""Chat under load and refusal (the bounded version of `make bench-load`): concurrent turns get
only 200, 409 `busy`, 429 or 503 with Retry-After, never a 500 or a hang; and whatever happens,
nothing half-written stays (no empty conversation, no question without an answer or a
`turn_failed` mark). A turn refused for what it names writes nothing at all."""

from __future__ import annotations

import asyncio
import collections
import uuid

import pytest

from shared.platform.db.pool import create_pool
from tests.integration.chatkit import chat_api, user
from tests.integration.ragkit import new_context

pytestmark = pytest.mark.integration
__all__ = ["chat_api"]

USERS, PER_USER = 5, 4  # 20 turns at once; the caps let 2 decodes per user run
CLEAN = {"200", "409", "429+retry", "503+retry"}


def _outcome(response) -> str:
    code = str(response.status_code)
    if code in ("429", "503"):
        return code + ("+retry" if response.headers.get("retry-after") else "")
    if code == "409":
        assert response.headers.get("retry-after"), response.text  # busy: when to come back
    return code


async def _half_written(settings, user_ids: list[str]) -> tuple[int, int]:
    """(questions with neither an answer nor a failure mark, conversations with no message)."""
    async with create_pool(settings) as pool, pool.connection() as conn:
        orphans = await (
            await conn.execute(
                "SELECT count(*) FROM message u JOIN conversation c ON c.id = u.conversation_id"
                " WHERE c.user_id = ANY(%s::uuid[]) AND u.sender = 'user'"
                " AND NOT u.meta ? 'turn_failed' AND NOT EXISTS (SELECT 1 FROM message a"
                " WHERE a.parent_id = u.id AND a.sender = 'assistant')",
                (user_ids,),
            )
        ).fetchone()
        empty = await (
            await conn.execute(
                "SELECT count(*) FROM conversation c WHERE c.user_id = ANY(%s::uuid[])"
                " AND NOT EXISTS (SELECT 1 FROM message m WHERE m.conversation_id = c.id)",
                (user_ids,),
            )
        ).fetchone()
    assert orphans is not None and empty is not None
    return int(orphans[0]), int(empty[0])


async def test_concurrent_turns_get_clean_outcomes_and_leave_nothing_half_written(
    chat_api, settings
) -> None:
    users = [await user(chat_api) for _ in range(USERS)]

    async def turn(headers: dict[str, str], n: int) -> str:
        body = {"message": {"content": f"Name a colour of the rainbow. ({uuid.uuid4().hex[:6]})"}}
        response = await asyncio.wait_for(
            chat_api.post("/v1/chat", headers=headers, json=body), timeout=240
        )
        return _outcome(response)

    outcomes = await asyncio.gather(
        *(turn(headers, n) for _, headers in users for n in range(PER_USER))
    )
    counts = collections.Counter(outcomes)
    assert set(counts) <= CLEAN, counts
    # The session's service has 2 decode slots and a queue of 2: some turns are served, the
    # rest meet a cap (409) or a full model queue (503 once the node's retries are spent).
    assert counts["200"] >= 2, counts
    assert counts["409"] >= 1, counts  # 4 at once is over the 2-decode cap
    assert await _half_written(settings, [uid for uid, _ in users]) == (0, 0)


async def test_a_turn_refused_for_what_it_names_writes_nothing(chat_api, settings) -> None:
    owner_id, owner = await user(chat_api)
    other_id, other = await user(chat_api)
    foreign_context = await new_context(chat_api, owner)
    workflow = await chat_api.post(
        "/v1/artifacts", headers=owner,
        json={"name": "mine", "schema": {"kind": "workflow.chat", "entrypoint": "e",
                                          "nodes": [{"id": "e", "type": "end"}]}},
    )  # fmt: skip
    assert workflow.status_code == 201, workflow.text
    refused = [
        {"context_ids": [foreign_context]},
        {"workflow_id": workflow.json()["data"]["id"]},
        {"context_ids": [str(uuid.uuid4())]},
    ]
    for extra in refused:  # in a new conversation: none may be created
        body = {"message": {"content": "hello"}, **extra}
        response = await chat_api.post("/v1/chat", headers=other, json=body)
        assert response.status_code == 404, response.text
    listed = await chat_api.get("/v1/conversations", headers=other)
    assert listed.json()["data"]["items"] == []

    made = await chat_api.post("/v1/conversations", headers=other, json={"title": "t"})
    conversation_id = made.json()["data"]["id"]
    for extra in refused:  # in an existing one: no message may be stored
        body = {"message": {"content": "hello"}, "conversation_id": conversation_id, **extra}
        response = await chat_api.post("/v1/chat", headers=other, json=body)
        assert response.status_code == 404, response.text
    messages = await chat_api.get(f"/v1/conversations/{conversation_id}/messages", headers=other)
    assert messages.json()["data"]["items"] == []
    # ...and neither may a turn in someone else's conversation.
    body = {"message": {"content": "hello"}, "conversation_id": conversation_id}
    assert (await chat_api.post("/v1/chat", headers=owner, json=body)).status_code == 404
    assert await _half_written(settings, [owner_id]) == (0, 0)
    assert await _half_written(settings, [other_id]) == (0, 1)  # only the one it made itself
