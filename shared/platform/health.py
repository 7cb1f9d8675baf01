"""Dependency checks for /healthz: each runs concurrently under its own time bound."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import httpx
from pydantic import BaseModel

from shared.platform.clients import Clients
from shared.platform.version import build_info

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


async def _database(clients: Clients) -> None:
    pool = clients.db
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")


async def _redis(clients: Clients) -> None:
    await clients.redis.ping()


async def _object_store(clients: Clients) -> None:
    await asyncio.to_thread(clients.s3.head_bucket, Bucket=clients.bucket())


async def _queue(clients: Clients) -> None:
    await clients.queues.all_urls()


async def _service_ready(clients: Clients, url: str, headers: dict[str, str]) -> None:
    """A model service's /healthz is green (it answers 503 while loading)."""
    async with httpx.AsyncClient(timeout=clients.settings.dependency_timeout_s) as client:
        response = await client.get(f"{url.rstrip('/')}/healthz", headers=headers)
        response.raise_for_status()


def disk_free_problem(path: Path, min_free_percent: float) -> str | None:
    """Why the disk holding `path` is too full for the local stack's servers, or None."""
    usage = shutil.disk_usage(path)
    free_percent = 100 * usage.free / usage.total if usage.total else 0.0
    if free_percent >= min_free_percent:
        return None
    return (f"{usage.free / 2**30:.1f} GiB ({free_percent:.1f} %) free on the data directory's "
            f"disk, under DISK_MIN_FREE_PERCENT={min_free_percent:g}: uploads fail below 1 %, "
            "the database at 0")  # fmt: skip


class DiskLow(Exception):
    """The data directory's disk is nearly full."""


async def _disk(clients: Clients) -> None:
    settings = clients.settings
    problem = await asyncio.to_thread(
        disk_free_problem, settings.data_dir, settings.disk_min_free_percent
    )
    if problem:
        raise DiskLow(problem)


async def _inference(clients: Clients) -> None:
    token = clients.settings.inference_token.get_secret_value()
    await _service_ready(clients, str(clients.settings.inference_url),
                         {"Authorization": f"Bearer {token}"})  # fmt: skip


async def _voice(clients: Clients) -> None:
    await _service_ready(clients, clients.settings.voice_service_url, {})


def _checks(clients: Clients) -> dict[str, Callable[[Clients], Awaitable[None]]]:
    checks: dict[str, Callable[[Clients], Awaitable[None]]] = {
        "database": _database,
        "redis": _redis,
        "object_store": _object_store,
        "queue": _queue,
    }
    if clients.settings.inference_url:
        checks["inference"] = _inference
    if clients.settings.voice_url:
        checks["voice"] = _voice
    # Only where the stack keeps its data on this host (dev, a single box); a Lambda has none.
    if clients.settings.data_dir.is_dir():
        checks["disk"] = _disk
    return checks


async def _timed(
    name: str, check: Callable[[Clients], Awaitable[None]], clients: Clients
) -> tuple[str, CheckResult]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check(clients), timeout=clients.settings.dependency_timeout_s)
        status: CheckStatus = "up"
        error = None
    except Exception as exc:  # a failed dependency is a result here, not an error
        status, error = "down", f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return name, CheckResult(
        status=status, latency_ms=round((time.perf_counter() - start) * 1000, 1), error=error
    )


async def check_health(clients: Clients) -> HealthReport:
    results = await asyncio.gather(*(_timed(n, c, clients) for n, c in _checks(clients).items()))
    checks = dict(results)
    healthy = all(result.status == "up" for result in checks.values())
    return HealthReport(
        status="ok" if healthy else "degraded", checks=checks, **build_info(clients.settings)
    )
