"""Conversations and messages through the gateway on the real Postgres."""

from __future__ import annotations

import asyncio

import pytest

from shared.domain.chat import conversations
from shared.platform.db.pool import create_pool
from tests.integration.authkit import bearer, sign_up

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(settings, migrated):
    async with create_pool(settings) as pool:
        yield pool


async def test_create_rename_archive_and_delete(api, pool) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    made = await api.post("/v1/conversations", headers=headers, json={"title": "Trip"})
    assert made.status_code == 201
    conversation = made.json()["data"]
    assert conversation["status"] == "open" and conversation["message_count"] == 0
    path = f"/v1/conversations/{conversation['id']}"
    renamed = await api.patch(path, headers=headers, json={"title": "Trip to Lyon"})
    assert renamed.json()["data"]["title"] == "Trip to Lyon"
    archived = await api.patch(path, headers=headers, json={"status": "archived"})
    assert archived.json()["data"]["status"] == "archived"
    open_only = await api.get("/v1/conversations", headers=headers, params={"status": "open"})
    assert conversation["id"] not in [c["id"] for c in open_only.json()["data"]["items"]]
    bad = await api.patch(path, headers=headers, json={"status": "deleted"})
    assert bad.status_code == 400
    async with pool.connection() as conn:
        await conversations.append_message(
            conn, user["user"]["id"], conversation["id"], sender="user", content="hello"
        )
    assert (await api.delete(path, headers=headers)).status_code == 200
    assert (await api.get(path, headers=headers)).status_code == 404
    async with pool.connection() as conn:  # the messages went with it
        left = await conn.execute(
            "SELECT count(*) FROM message WHERE conversation_id = %s", (conversation["id"],)
        )
        assert (await left.fetchone())[0] == 0


async def test_the_list_is_newest_first_and_pages_without_gaps(api, pool) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    ids = []
    for n in range(7):
        made = await api.post("/v1/conversations", headers=headers, json={"title": f"c{n}"})
        ids.append(made.json()["data"]["id"])
    # A new message moves the oldest conversation to the top.
    async with pool.connection() as conn:
        await conversations.append_message(
            conn, user["user"]["id"], ids[0], sender="user", content="bump"
        )
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/conversations", headers=headers, params=params)).json()["data"]
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[0], *reversed(ids[1:])]
    broken = await api.get("/v1/conversations", headers=headers, params={"cursor": "!!"})
    assert broken.status_code == 400


async def test_messages_get_sequential_seq_branches_and_normalized_content(api, pool) -> None:
    user = await sign_up(api)
    headers, user_id = bearer(user["access_token"]), user["user"]["id"]
    conversation = (await api.post("/v1/conversations", headers=headers, json={})).json()["data"]
    cid = conversation["id"]
    async with pool.connection() as conn:
        question = await conversations.append_message(
            conn, user_id, cid, sender="user", content="Capital of France?"
        )
        first = await conversations.append_message(
            conn, user_id, cid, sender="assistant", content="Paris.", parent_id=question.id,
            content_struct={"segments": [{"type": "text", "text": "Paris.", "x": 1},
                                         {"type": "nonsense"}]},
        )  # fmt: skip
        # Regenerate: a sibling answer to the same question; history is kept.
        second = await conversations.append_message(
            conn, user_id, cid, sender="assistant", content="It is Paris.", parent_id=question.id
        )
    assert [question.seq, first.seq, second.seq] == [1, 2, 3]
    assert first.content_struct == {
        "segments": [{"type": "text", "text": "Paris."}],
        "dropped_segments": 1,
    }
    page = (
        await api.get(f"/v1/conversations/{cid}/messages", headers=headers, params={"limit": 2})
    ).json()["data"]
    assert [m["seq"] for m in page["items"]] == [1, 2] and page["next_cursor"] == "2"
    rest = (
        await api.get(f"/v1/conversations/{cid}/messages", headers=headers, params={"cursor": 2})
    ).json()["data"]
    assert [m["parent_id"] for m in rest["items"]] == [question.id]
    assert rest["next_cursor"] is None
    assert (await api.get(f"/v1/conversations/{cid}", headers=headers)).json()["data"][
        "message_count"
    ] == 3


async def test_concurrent_writers_get_distinct_seq(api, pool) -> None:
    user = await sign_up(api)
    user_id = user["user"]["id"]
    async with pool.connection() as conn:
        made = await conversations.create(conn, user_id, title=None)

    async def write(n: int) -> int:
        async with pool.connection() as conn:
            message = await conversations.append_message(
                conn, user_id, made.id, sender="user", content=f"m{n}"
            )
        return message.seq

    assert sorted(await asyncio.gather(*(write(n) for n in range(8)))) == list(range(1, 9))


async def test_a_parent_from_another_conversation_is_refused(api, pool) -> None:
    user = await sign_up(api)
    user_id = user["user"]["id"]
    async with pool.connection() as conn:
        one = await conversations.create(conn, user_id, title=None)
        two = await conversations.create(conn, user_id, title=None)
        elsewhere = await conversations.append_message(
            conn, user_id, one.id, sender="user", content="x"
        )
        with pytest.raises(Exception, match="parent_id"):
            await conversations.append_message(
                conn, user_id, two.id, sender="user", content="y", parent_id=elsewhere.id
            )
