"""The psycopg 3 async pool, with pgvector's types registered on every connection.

It survives a database outage: each connection is checked when it is handed out (a cheap
round trip), so one that died with the server is replaced instead of failing the request that
got it; and the pool keeps trying to reconnect for as long as the outage lasts (psycopg_pool
only calls `reconnect_failed` after `reconnect_timeout`, and then keeps going: we log it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from shared.platform.settings import Settings

log = logging.getLogger(__name__)
# How long one reconnection attempt keeps trying (its delays double: 1 s, 2 s, ...) before it
# gives up and the next request for a connection starts a fresh one that connects at once. Short,
# so that the first request after an outage does not wait out a back-off grown during it (with
# 60 s, a restarted database answered its first query 9 s after it was back).
RECONNECT_TIMEOUT_S = 5.0


async def _configure(conn: psycopg.AsyncConnection) -> None:
    # Before the first migration the vector extension does not exist yet.
    with contextlib.suppress(psycopg.ProgrammingError):
        await register_vector_async(conn)
    await conn.set_autocommit(False)


def _reconnect_failed(pool: AsyncConnectionPool) -> None:
    # Not fatal: the pool refills when it is next asked for a connection, and /healthz reports
    # the database down meanwhile. A process that exited here would only be restarted.
    log.warning("database unreachable for %.0fs; retrying on the next request",
                RECONNECT_TIMEOUT_S, extra={"pool": pool.name})  # fmt: skip


def create_pool(settings: Settings, *, dsn: str | None = None) -> AsyncConnectionPool:
    """Closed pool; `await pool.open()` (or `async with`) before use."""
    timeout_ms = settings.db_statement_timeout_ms
    made: list[AsyncConnectionPool] = []

    async def check(conn: psycopg.AsyncConnection[Any]) -> None:
        """The connection works, or the pool is rid of every idle connection that does not.

        A dead one usually means the server restarted, so its idle siblings are dead too; and
        psycopg_pool backs off 1 s, 2 s, 4 s... between a checkout's retries, so a pool that
        had grown to ten connections before a restart would time out the first request after
        it, one dead connection at a time. Checking them all at the first failure (each fails
        at once on a closed socket) leaves that request one short back-off."""
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            if made:
                await made[0].check()
            raise

    pool = AsyncConnectionPool(
        dsn or settings.postgres_dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        kwargs={"options": f"-c statement_timeout={timeout_ms}", "connect_timeout": 5},
        configure=_configure,
        check=check,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        reconnect_failed=_reconnect_failed,
        timeout=settings.dependency_timeout_s * 3,
        open=False,
        name="app",
    )
    made.append(pool)
    return pool


Connection = psycopg.AsyncConnection[Any]


class Pool(Protocol):
    """What a store needs of a pool: a connection for the length of a block. Both psycopg's
    pool and `PoolHolder` are one."""

    def connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]: ...


class PoolHolder:
    """Lazily opens one pool per process and event loop (a function runs in one loop)."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._pool: AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AsyncConnectionPool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    pool = create_pool(self._settings)
                    await pool.open(wait=False)
                    self._pool = pool
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the current pool: holders of a `PoolHolder` never keep a pool
        that a restart replaced."""
        pool = await self.get()
        async with pool.connection() as conn:
            yield conn

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
