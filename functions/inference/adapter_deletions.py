"""Every inference task drops a deleted adapter version from its cache at once.

The service runs as several tasks behind a load balancer (infra/aws/inference.yaml), so a call
to one of them cannot reach the others. Postgres tells them all instead: deleting an
`artifact_version` row (an account purge cascades to the user's adapters, an adapter or a
version deleted on its own) sends `NOTIFY adapter_version_deleted` with the row's adapter id
and version (sql/026_adapter_deletions.sql). Postgres delivers a notification only when the
deleting transaction commits, and to every connection listening at that moment; each task
keeps one such connection.

A task that was not listening (starting, or its connection dropped) would miss what was
deleted meanwhile, so every (re)connection first reconciles: the versions the cache holds are
checked against the table, and the ones whose rows are gone are dropped. A listen that stays
silent is checked with a round trip every `idle_check_s`, so a connection that died without a
word (a failover, a dropped NAT entry) is noticed and replaced.

Serving never depends on this: with the database down the task goes on answering from its
cache (requests for adapters fail on resolving anyway) and reconnects every `retry_s`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import psycopg

from functions.inference.adapter_cache import AdapterCache, Key

log = logging.getLogger("inference.adapter_deletions")

CHANNEL = "adapter_version_deleted"
APPLICATION_NAME = "inference-adapter-deletions"  # how the connection shows in pg_stat_activity

_STILL_THERE = """
SELECT artifact_id::text, version FROM artifact_version
 WHERE (artifact_id::text, version) IN (SELECT * FROM unnest(%s::text[], %s::int[]))
"""


def parse(payload: str) -> Key | None:
    """`{"adapter_id": ..., "version": ...}` as the trigger sends it; None for anything else
    (logged: a notification this code does not understand is a bug, not an attack)."""
    try:
        body = json.loads(payload)
        return str(body["adapter_id"]), int(body["version"])
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring a malformed %s notification: %.200r", CHANNEL, payload)
        return None


class AdapterDeletions:
    """`run()` is the listening loop (a task of the service's lifespan). `cache` returns the
    service's adapter cache, or None while the model is still loading (nothing cached yet)."""

    def __init__(
        self,
        dsn: str,
        cache: Callable[[], AdapterCache | None],
        *,
        retry_s: float = 5.0,
        idle_check_s: float = 60.0,
    ):
        self._dsn, self._cache = dsn, cache
        self.retry_s, self.idle_check_s = retry_s, idle_check_s
        self.listening = asyncio.Event()  # set while a connection listens (tests wait on it)
        self.backend_pid: int | None = None  # the listening connection's, in pg_stat_activity
        self.evicted = 0

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database down or restarting: serve on, retry
                log.warning("not listening for adapter deletions (%s: %s); retrying in %.0fs",
                            type(exc).__name__, exc, self.retry_s)  # fmt: skip
            self.listening.clear()
            await asyncio.sleep(self.retry_s)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, application_name=APPLICATION_NAME
        )
        async with conn:
            self.backend_pid = conn.info.backend_pid
            await conn.execute(f"LISTEN {CHANNEL}")
            # Listening first, then reconciling: a deletion committed in between is caught
            # by one or the other (both, harmlessly), never by neither.
            await self._reconcile(conn)
            self.listening.set()
            while True:
                async for note in conn.notifies(timeout=self.idle_check_s):
                    key = parse(note.payload)
                    if key is not None:
                        self._drop({key}, why="deleted")
                await conn.execute("SELECT 1")  # silent for a while: is the connection alive?

    async def _reconcile(self, conn: psycopg.AsyncConnection) -> None:
        cache = self._cache()
        held = sorted(cache.cached_keys()) if cache is not None else []
        if not held:
            return
        ids, versions = [k[0] for k in held], [k[1] for k in held]
        rows = await (await conn.execute(_STILL_THERE, (ids, versions))).fetchall()
        self._drop(set(held) - {(r[0], int(r[1])) for r in rows}, why="gone while not listening")

    def _drop(self, keys: set[Key], *, why: str) -> None:
        cache = self._cache()
        if cache is None or not keys:
            return
        dropped = cache.evict(keys)
        if dropped:
            self.evicted += dropped
            log.info("dropped %d deleted adapter version(s) from the cache (%s): %s",
                     dropped, why, sorted(keys)[:10])  # fmt: skip
