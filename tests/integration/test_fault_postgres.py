"""A database outage: while Postgres is down every database route answers 503 `unavailable`
with Retry-After (never a 500) and `/healthz` says which dependency is down; once it is back
the next requests succeed without an operator and without errors from the pool's stale
connections. Prints the recovery time (restart to the first good answer).

Stops the session's own Postgres (fast shutdown, as a crash would end every connection), so it
runs only when the test session started the stack: never against a developer's `make run`."""

from __future__ import annotations

import time

import pytest

from infra.stack.postgres import LocalPostgres
from tests.integration.authkit import bearer, sign_up

pytestmark = pytest.mark.integration


async def test_postgres_down_then_back(api, settings, local_stack) -> None:
    if "postgres" not in local_stack.started:
        pytest.skip("the stack was already running: not stopping someone else's Postgres")
    headers = bearer((await sign_up(api))["access_token"])
    made = await api.post("/v1/conversations", headers=headers, json={"title": "kept"})
    assert made.status_code == 201, made.text

    postgres = LocalPostgres(settings)
    assert postgres.stop()
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
        postgres.start()
        started_s = time.monotonic() - restarted

    listed = await api.get("/v1/conversations", headers=headers)
    recovered_s = time.monotonic() - restarted
    assert listed.status_code == 200, listed.text  # no error from a stale pooled connection
    assert [c["title"] for c in listed.json()["data"]["items"]] == ["kept"]  # nothing half-made
    for _ in range(5):
        again = await api.get("/v1/conversations", headers=headers)
        assert again.status_code == 200, again.text
    print(f"\npostgres: restart {started_s:.1f} s, first good answer {recovered_s:.1f} s after it")
