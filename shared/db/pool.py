"""The psycopg 3 async pool, with pgvector's types registered on every connection."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool

from shared.config import Settings


async def _configure(conn: psycopg.AsyncConnection) -> None:
    # Before the first migration the vector extension does not exist yet.
    with contextlib.suppress(psycopg.ProgrammingError):
        await register_vector_async(conn)
    await conn.set_autocommit(False)


def create_pool(settings: Settings, *, dsn: str | None = None) -> AsyncConnectionPool:
    """Closed pool; `await pool.open()` (or `async with`) before use."""
    timeout_ms = settings.db_statement_timeout_ms
    return AsyncConnectionPool(
        dsn or settings.postgres_dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        kwargs={"options": f"-c statement_timeout={timeout_ms}", "connect_timeout": 5},
        configure=_configure,
        timeout=settings.dependency_timeout_s * 3,
        open=False,
        name="app",
    )


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

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
