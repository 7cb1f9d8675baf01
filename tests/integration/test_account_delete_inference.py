"""Deleting an account and the inference service (issue 23 item 4): once the purge has deleted
the user's rows, the session's real inference service drops the user's cached adapters, told
by Postgres (sql/026's trigger, functions/inference/adapter_deletions.py; every task of a
scaled-out service hears it: tests/integration/test_adapter_deletions.py). And GET /v1/me says
whether DELETE /v1/me will ask for a password."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from shared.domain.account_data import purge
from shared.domain.account_data.pseudonyms import pseudonym
from shared.platform.audit import Actor
from shared.platform.auth.sessions import Sessions
from tests.inference import TOKEN
from tests.integration.accountkit import deliver
from tests.integration.authkit import bearer, sign_up

pytestmark = pytest.mark.integration

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


async def _request_deletion(services, uid: str) -> str:
    async with services.db.connection() as conn, conn.transaction():
        alias = pseudonym(services.settings, uid)
        asked = await purge.request_deletion(conn, uid, pseudonym=alias, actor=Actor(),
                                             by_admin=True)  # fmt: skip
    return asked.id


async def _purge_state(services, purge_id: str) -> tuple:
    async with services.db.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT status, user_id IS NULL, last_error FROM account_purge WHERE id = %s",
                (purge_id,),
            )
        ).fetchone()
    assert row is not None
    return tuple(row)


async def _cached(inference: httpx.AsyncClient) -> set[str]:
    models = await inference.get("/v1/models")
    assert models.status_code == 200, models.text
    return {m["id"] for m in models.json()["data"] if "in_host_cache" in m}


async def test_the_purge_drops_the_users_adapters_from_the_running_service(
    service, adapters, model_services
) -> None:
    doomed, other = await adapters.user(), await adapters.user()
    mine = await adapters.publish(doomed, seed=11, kind="persona")
    theirs = await adapters.publish(other, seed=12, kind="persona")
    async with httpx.AsyncClient(base_url=service, headers=HEADERS, timeout=120) as inference:
        for record in (mine, theirs):  # into the host cache, pinned as a persona in use is
            loaded = await inference.post("/v1/adapters/load",
                                          json={"id": record.adapter_id, "pin_s": 600})  # fmt: skip
            assert loaded.status_code == 200, loaded.text
        chat = await inference.post("/v1/chat/completions", json={
            "model": mine.adapter_id, "max_tokens": 2, "temperature": 0,
            "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        assert chat.status_code == 200, chat.text  # and into a bank slot
        assert {mine.adapter_id, theirs.adapter_id} <= await _cached(inference)

        purge_id = await _request_deletion(model_services, doomed)
        assert await deliver(model_services, "PurgeQueue", {"purge_id": purge_id}) == []
        assert await _purge_state(model_services, purge_id) == ("done", True, None)
        # Gone from both tiers, pinned or not; another user's stays.
        assert await _until_gone(inference, mine.adapter_id, theirs.adapter_id)
        # The other user's pinned persona out too (the session's service is shared, and its
        # small cache must not stay pinned full for the tests that come after): any deletion
        # of an adapter's rows is heard, not only a purge's.
        async with model_services.db.connection() as conn:
            await conn.execute("DELETE FROM app_user WHERE id = %s", (other,))
        assert await _until_gone(inference, theirs.adapter_id)
    async with httpx.AsyncClient(base_url=service) as anonymous:  # the old route is gone
        assert (await anonymous.post("/v1/adapters/evict", json={})).status_code in (401, 404)


async def _until_gone(inference: httpx.AsyncClient, adapter_id: str, *kept: str) -> bool:
    """Waits (a generous deadline, not a timing threshold) for the notification to land."""
    for _ in range(300):
        cached = await _cached(inference)
        if adapter_id not in cached:
            assert set(kept) <= cached
            return True
        await asyncio.sleep(0.1)
    return False


async def test_me_says_whether_the_account_has_a_password(api, services) -> None:
    signed = await sign_up(api)
    me = await api.get("/v1/me", headers=bearer(signed["access_token"]))
    assert me.status_code == 200 and me.json()["data"]["has_password"] is True
    async with services.db.connection() as conn:  # an account made through an OIDC provider
        row = await (
            await conn.execute(
                "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text",
                (f"oidc-{uuid.uuid4().hex[:10]}@example.test",),
            )
        ).fetchone()
    sessions = Sessions(services.settings, services.db, services.redis)
    pair = await sessions.open(row[0], "user", user_agent="probe", ip=None)
    oidc = await api.get("/v1/me", headers=bearer(pair.access_token))
    assert oidc.status_code == 200 and oidc.json()["data"]["has_password"] is False
