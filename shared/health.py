"""Dependency checks for /healthz: each runs concurrently under its own time bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import httpx
from pydantic import BaseModel

from shared.deps import Dependencies
from shared.version import build_info

CheckStatus = Literal["up", "down"]


class CheckResult(BaseModel):
    status: CheckStatus
    latency_ms: float
    error: str | None = None


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    version: str | None
    git_commit: str | None
    checks: dict[str, CheckResult]


async def _database(deps: Dependencies) -> None:
    pool = await deps.db.get()
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")


async def _redis(deps: Dependencies) -> None:
    await deps.redis.ping()


async def _object_store(deps: Dependencies) -> None:
    await asyncio.to_thread(deps.s3.head_bucket, Bucket=deps.bucket())


async def _queue(deps: Dependencies) -> None:
    await deps.queues.all_urls()


async def _inference(deps: Dependencies) -> None:
    url = deps.settings.inference_url
    token = deps.settings.inference_token.get_secret_value()
    async with httpx.AsyncClient(timeout=deps.settings.dependency_timeout_s) as client:
        response = await client.get(f"{url}/healthz", headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()


def _checks(deps: Dependencies) -> dict[str, Callable[[Dependencies], Awaitable[None]]]:
    checks: dict[str, Callable[[Dependencies], Awaitable[None]]] = {
        "database": _database,
        "redis": _redis,
        "object_store": _object_store,
        "queue": _queue,
    }
    if deps.settings.inference_url:
        checks["inference"] = _inference
    return checks


async def _timed(
    name: str, check: Callable[[Dependencies], Awaitable[None]], deps: Dependencies
) -> tuple[str, CheckResult]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check(deps), timeout=deps.settings.dependency_timeout_s)
        status: CheckStatus = "up"
        error = None
    except Exception as exc:  # a failed dependency is a result here, not an error
        status, error = "down", f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return name, CheckResult(
        status=status, latency_ms=round((time.perf_counter() - start) * 1000, 1), error=error
    )


async def check_health(deps: Dependencies) -> HealthReport:
    results = await asyncio.gather(*(_timed(n, c, deps) for n, c in _checks(deps).items()))
    checks = dict(results)
    healthy = all(result.status == "up" for result in checks.values())
    return HealthReport(
        status="ok" if healthy else "degraded", checks=checks, **build_info(deps.settings)
    )
