"""Deleting an account and the inference service (issue 23 item 4): the purge tells the
running service to drop the user's adapters from its cache at once (POST /v1/adapters/evict,
tested against the session's real service), retries through the queue while the service
cannot be reached, and on the message's last receive finishes anyway. And GET /v1/me says
whether DELETE /v1/me will ask for a password."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr

from shared.domain.account_data import purge
from shared.domain.account_data.pseudonyms import pseudonym
from shared.platform.audit import Actor
from shared.platform.auth.sessions import Sessions
from shared.services import Services
from tests.helpers import free_port
from tests.inference import TOKEN
from tests.integration.accountkit import deliver
from tests.integration.authkit import bearer, sign_up

pytestmark = pytest.mark.integration

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
PURGE_MAX_RECEIVES = 8  # template.yaml: PurgeQueue's maxReceiveCount


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
        cached = await _cached(inference)
        assert mine.adapter_id not in cached  # gone from both tiers, pinned or not
        assert theirs.adapter_id in cached  # another user's stays
        # Evicting again (a purge run twice) is harmless; the route wants the bearer token.
        again = await inference.post("/v1/adapters/evict", json={"user_id": doomed})
        assert again.status_code == 200 and again.json() == {"user_id": doomed, "evicted": 0}
        bad = await inference.post("/v1/adapters/evict", json={"user_id": "x"})
        assert bad.status_code == 400
        # The other user's pinned persona out too: the session's service is shared, and its
        # small cache must not stay pinned full for the tests that come after.
        cleared = await inference.post("/v1/adapters/evict", json={"user_id": other})
        assert cleared.json()["evicted"] == 1 and theirs.adapter_id not in await _cached(inference)
    async with httpx.AsyncClient(base_url=service) as anonymous:
        refused = await anonymous.post("/v1/adapters/evict", json={"user_id": doomed})
        assert refused.status_code == 401


@pytest.fixture
async def unreachable(settings):
    """Services whose inference service cannot be reached (nothing listens on the port)."""
    made = Services.from_settings(settings.model_copy(update={
        "inference_url": f"http://127.0.0.1:{free_port()}",
        "inference_token": SecretStr(TOKEN), "dependency_timeout_s": 1.0}))  # fmt: skip
    yield made
    await made.aclose()


async def test_an_unreachable_service_is_retried_then_the_purge_finishes(unreachable) -> None:
    async with unreachable.db.connection() as conn:
        row = await (
            await conn.execute(
                "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text",
                (f"evict-{uuid.uuid4().hex[:10]}@example.test",),
            )
        ).fetchone()
    uid = row[0]
    purge_id = await _request_deletion(unreachable, uid)
    body = {"purge_id": purge_id}
    # Before the last receive the message fails (the queue retries it) and says why...
    assert len(await deliver(unreachable, "PurgeQueue", body, receive=1)) == 1
    status, forgotten, error = await _purge_state(unreachable, purge_id)
    assert (status, forgotten) == ("pending", False) and "Unavailable" in error
    # ...the other steps are done already (the account's rows are gone)...
    async with unreachable.db.connection() as conn:
        gone = await (await conn.execute("SELECT 1 FROM app_user WHERE id = %s", (uid,))).fetchone()
    assert gone is None
    # ...and on the last receive the purge finishes without the service.
    last = await deliver(unreachable, "PurgeQueue", body, receive=PURGE_MAX_RECEIVES)
    assert last == []
    assert await _purge_state(unreachable, purge_id) == ("done", True, None)


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
