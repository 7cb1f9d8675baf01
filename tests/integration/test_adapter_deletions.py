"""Deleted adapter versions leave every inference task's cache (issue 23): the trigger of
sql/026 notifies, and each task's listener (functions/inference/adapter_deletions.py) drops
what it holds. Here two caches stand for two tasks behind the load balancer, each with its
own listener on the real Postgres; adapters resolve through the real registry and load from
the real S3 store. Only parsing and installing (the engine's part) are left out: a version's
bytes stand for its weights.

Waiting for a notification to arrive is a wait for a condition with a generous deadline, not a
timing threshold."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from functions.inference.adapter_cache import AdapterCache, AdapterRef
from functions.inference.adapter_deletions import APPLICATION_NAME, AdapterDeletions, parse
from functions.inference.adapter_files import fetch_version
from shared.domain.adapters import registry

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0


@dataclass
class _Bytes:
    """A fetched version as the cache keeps it (the engine would parse it into weights)."""

    nbytes: int


class _Task:
    """One inference task's cache and its deletions listener."""

    def __init__(self, settings, adapters) -> None:
        async def resolve(adapter_id: str, version: int | None, user: str | None):
            async with adapters.pool.connection() as conn:
                return await registry.resolve(conn, adapter_id, version, user_id=user)

        async def fetch(record):
            return await asyncio.to_thread(fetch_version, adapters.s3, adapters.bucket,
                                           record.prefix)  # fmt: skip

        self.cache = AdapterCache(
            resolve=resolve, fetch=fetch,
            parse=lambda files: _Bytes(sum(len(b) for b in files.values())),
            install=lambda slot, weights: None,
            slots=4, host_budget_bytes=64 << 20, pin_ttl_s=600, registry=CollectorRegistry(),
        )  # fmt: skip
        self.listener = AdapterDeletions(settings.postgres_dsn, lambda: self.cache,
                                         retry_s=0.2, idle_check_s=1.0)  # fmt: skip
        self._running: asyncio.Task | None = None

    async def use(self, adapter_id: str) -> None:
        (await self.cache.acquire([AdapterRef(adapter_id)])).release()

    def holds(self, adapter_id: str) -> bool:
        return any(key[0] == adapter_id for key in self.cache.cached_keys())

    async def start(self) -> None:
        self._running = asyncio.create_task(self.listener.run())
        await asyncio.wait_for(self.listener.listening.wait(), DEADLINE_S)

    async def stop(self) -> None:
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
            self._running = None


@pytest.fixture
async def tasks(settings, adapters) -> AsyncIterator[Callable[[], _Task]]:
    made: list[_Task] = []

    def task() -> _Task:
        made.append(_Task(settings, adapters))
        return made[-1]

    yield task
    for each in made:
        await each.stop()


async def _until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.05)


async def _delete(adapters, sql: str, *args: object) -> None:
    async with adapters.pool.connection() as conn:
        await conn.execute(sql, args)


async def test_every_task_drops_a_deleted_adapter_and_keeps_the_rest(tasks, adapters) -> None:
    first, second = tasks(), tasks()
    owner, other = await adapters.user(), await adapters.user()
    doomed = await adapters.publish(owner, seed=21, kind="persona")
    kept = await adapters.publish(other, seed=22, kind="persona")
    for task in (first, second):
        await task.start()
        for record in (doomed, kept):
            await task.use(record.adapter_id)
    # The account purge's step: deleting the user cascades to their adapters' versions.
    await _delete(adapters, "DELETE FROM app_user WHERE id = %s", owner)
    await _until(lambda: not first.holds(doomed.adapter_id) and not second.holds(doomed.adapter_id))
    assert first.holds(kept.adapter_id) and second.holds(kept.adapter_id)
    # One version deleted on its own: only that version goes.
    await _delete(adapters, "DELETE FROM artifact_version WHERE artifact_id = %s", kept.adapter_id)
    await _until(lambda: not first.holds(kept.adapter_id) and not second.holds(kept.adapter_id))
    assert first.listener.evicted == second.listener.evicted == 2
    await _delete(adapters, "DELETE FROM app_user WHERE id = %s", other)


async def test_a_rolled_back_deletion_drops_nothing(tasks, adapters) -> None:
    task = tasks()
    owner = await adapters.user()
    record = await adapters.publish(owner, seed=23)
    await task.start()
    await task.use(record.adapter_id)
    async with adapters.pool.connection() as conn:
        async with conn.transaction(force_rollback=True):
            await conn.execute("DELETE FROM app_user WHERE id = %s", (owner,))
        # A later committed deletion arrives, so the rolled-back one would have come first.
        marker = await adapters.publish(await adapters.user(), seed=24)
        await task.use(marker.adapter_id)
        await conn.execute("DELETE FROM artifact WHERE id = %s", (marker.adapter_id,))
    await _until(lambda: not task.holds(marker.adapter_id))
    assert task.holds(record.adapter_id)
    await _delete(adapters, "DELETE FROM app_user WHERE id = %s", owner)


async def test_what_was_deleted_while_not_listening_is_dropped_on_reconnecting(
    tasks, adapters
) -> None:
    task = tasks()
    owner = await adapters.user()
    missed, kept = await adapters.publish(owner, seed=25), await adapters.publish(owner, seed=26)
    await task.use(missed.adapter_id)
    await task.use(kept.adapter_id)
    # Not listening yet (a task starting), then a connection killed by the server (a
    # failover): each deletion meanwhile is found by the reconciliation on connecting.
    await _delete(adapters, "DELETE FROM artifact WHERE id = %s", missed.adapter_id)
    await task.start()
    assert not task.holds(missed.adapter_id) and task.holds(kept.adapter_id)
    async with adapters.pool.connection() as conn:
        pid = await (
            await conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid = %s",
                (APPLICATION_NAME, task.listener.backend_pid),
            )
        ).fetchone()
        assert pid is not None  # the listener says who it is
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
        await _until(lambda: not task.listener.listening.is_set())
        await conn.execute("DELETE FROM artifact WHERE id = %s", (kept.adapter_id,))
    await _until(lambda: not task.holds(kept.adapter_id))
    assert task.listener.listening.is_set()
    await _delete(adapters, "DELETE FROM app_user WHERE id = %s", owner)


def test_payloads_the_trigger_does_not_send_are_ignored() -> None:
    assert parse('{"adapter_id": "a", "version": 2}') == ("a", 2)
    assert parse("not json") is None and parse('{"adapter_id": "a"}') is None
