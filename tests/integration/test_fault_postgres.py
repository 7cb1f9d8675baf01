"""A database outage: while Postgres is down every database route answers 503 `unavailable`
with Retry-After (never a 500) and `/healthz` says which dependency is down; once it is back
the next requests succeed without an operator and without errors from the pool's stale
connections. Prints the recovery time (restart to the first good answer).

Stops the session's own Postgres (fast shutdown, as a crash would end every connection), so it
runs only when the test session started the stack: never against a developer's `make run`."""

from __future__ import annotations

import asyncio
import time

import pytest

from infra.stack.postgres import LocalPostgres
from shared.services import Services
from tests.integration.authkit import bearer, sign_up

pytestmark = pytest.mark.integration


async def test_postgres_down_then_back(api, settings, local_stack) -> None:
    if "postgres" not in local_stack.started:
        pytest.skip("the stack was already running: not stopping someone else's Postgres")
    headers = bearer((await sign_up(api))["access_token"])
    made = await api.post("/v1/conversations", headers=headers, json={"title": "kept"})
    assert made.status_code == 201, made.text

    # Under load: writers keep creating conversations through the outage.
    statuses: list[int] = []
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            answer = await api.post("/v1/conversations", headers=headers, json={"title": "load"})
            statuses.append(answer.status_code)
            if answer.status_code == 503:
                assert int(answer.headers["retry-after"]) > 0, answer.text
            await asyncio.sleep(0.05)

    writers = [asyncio.create_task(writer()) for _ in range(3)]
    await asyncio.sleep(0.5)
    postgres = LocalPostgres(settings)
    assert await asyncio.to_thread(postgres.stop)
    try:
        for method, path, body in (("GET", "/v1/conversations", None),
                                   ("POST", "/v1/conversations", {"title": "lost"})):  # fmt: skip
            answer = await api.request(method, path, headers=headers, json=body)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "unavailable"
            assert int(answer.headers["retry-after"]) > 0
        health = await api.get("/healthz")
        assert health.status_code == 503
        assert health.json()["error"]["details"]["checks"]["database"]["status"] == "down"
    finally:
        restarted = time.monotonic()
        await asyncio.to_thread(postgres.start)
        started_s = time.monotonic() - restarted

    listed = await api.get("/v1/conversations", headers=headers, params={"limit": 100})
    recovered_s = time.monotonic() - restarted
    assert listed.status_code == 200, listed.text  # no error from a stale pooled connection
    await asyncio.sleep(1.0)  # the writers run on the recovered database for a moment
    stop.set()
    await asyncio.gather(*writers)
    assert set(statuses) <= {201, 503}, statuses  # clear errors under load, never a 500
    assert statuses[-1] == 201 and 503 in statuses
    # Nothing lost, nothing half-made: exactly the conversations whose creation answered 201.
    titles, query = [], {"limit": 100}
    while True:
        page = (await api.get("/v1/conversations", headers=headers, params=query)).json()["data"]
        titles += [c["title"] for c in page["items"]]
        if page["next_cursor"] is None:
            break
        query = {"limit": 100, "cursor": page["next_cursor"]}
    assert sorted(titles) == sorted(["kept"] + ["load"] * statuses.count(201))
    print(
        f"\npostgres: restart {started_s:.1f} s, first good answer {recovered_s:.1f} s after it;"
        f" writers saw {statuses.count(201)} x 201, {statuses.count(503)} x 503"
    )


async def test_a_grown_pool_serves_the_first_request_after_a_restart(settings, local_stack) -> None:
    """A pool that grew under load holds that many connections, all dead after a restart.
    psycopg_pool backs off 1 s, 2 s, 4 s... between a checkout's retries, so discarding them one
    per retry timed the first request out (PoolTimeout, a 503): the first failed check now rids
    the pool of every dead idle connection at once."""
    if "postgres" not in local_stack.started:
        pytest.skip("the stack was already running: not stopping someone else's Postgres")
    services = Services.from_settings(settings)
    held = asyncio.Event()

    async def hold() -> None:
        async with services.db.connection() as conn:
            await conn.execute("SELECT 1")
            await held.wait()

    holders = [asyncio.create_task(hold()) for _ in range(settings.db_pool_max)]
    await asyncio.sleep(1.0)  # every holder has its own connection now
    held.set()
    await asyncio.gather(*holders)
    postgres = LocalPostgres(settings)
    try:
        assert await asyncio.to_thread(postgres.stop)
    finally:
        await asyncio.to_thread(postgres.start)
    async with services.db.connection() as conn:  # PoolTimeout here before the fix
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    await services.aclose()
