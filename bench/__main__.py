"""`make bench`: request latency through the local gateway, and outbox relay throughput.

Figures are percentiles and ratios on whatever machine runs them; docs/benchmarks.md quotes the
latest run with the command that produced it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

import httpx

from infra import stack
from shared.platform.aws import sqs_client
from shared.platform.db.migrate import migrate
from shared.platform.db.pool import create_pool
from shared.platform.outbox import enqueue, relay_once
from shared.platform.settings import REPO_ROOT, get_settings

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
OUTBOX_ROWS = int(os.environ.get("BENCH_OUTBOX_ROWS", "300"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=100)
    return {"p50": q[49], "p95": q[94], "p99": q[98]}


def _line(name: str, samples_ms: list[float]) -> str:
    p = _percentiles(samples_ms)
    return f"{name:<34} p50 {p['p50']:7.2f} ms   p95 {p['p95']:7.2f} ms   p99 {p['p99']:7.2f} ms"


def bench_gateway(base: str) -> dict[str, float]:
    medians = {}
    with httpx.Client(base_url=base, timeout=10) as client:
        for path in ("/v1/openapi.json", "/healthz", "/index.html", "/v1/unknown"):
            for _ in range(20):  # warm-up: pools, imports, caches
                client.get(path)
            samples = []
            for _ in range(REQUESTS):
                start = time.perf_counter()
                client.get(path)
                samples.append((time.perf_counter() - start) * 1000)
            print(_line(f"GET {path} via gateway", samples))
            medians[path] = _percentiles(samples)["p50"]
    return medians


async def bench_outbox() -> None:
    """Relay throughput into a scratch queue of its own (deleted afterwards)."""
    settings = get_settings()
    sqs = sqs_client(settings)
    url = sqs.create_queue(QueueName=f"{settings.stack_name}-bench-{uuid.uuid4().hex[:8]}")[
        "QueueUrl"
    ]
    try:
        async with create_pool(settings) as pool:
            async with pool.connection() as conn, conn.transaction():
                for i in range(OUTBOX_ROWS):
                    await enqueue(conn, queue="BenchQueue", body={"bench": i})
            start = time.perf_counter()
            sent = 0
            while sent < OUTBOX_ROWS:
                sent += await relay_once(pool, sqs, {"BenchQueue": url})
            elapsed = time.perf_counter() - start
    finally:
        sqs.delete_queue(QueueUrl=url)
    rate = f"{sent / elapsed:7.0f} rows/s"
    print(f"{'outbox relay to SQS':<34} {rate} ({sent} rows, SendMessageBatch of 10)")


def main() -> int:
    settings = get_settings()
    stack.up(settings)
    migrate(settings.postgres_dsn)
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "GATEWAY_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    gateway = subprocess.Popen([sys.executable, "-m", "infra.gateway"], cwd=REPO_ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        print(
            f"{REQUESTS} sequential requests per route, one client, keep-alive;"
            f" {os.cpu_count()} CPUs"
        )
        medians = bench_gateway(base)
        ratio = medians["/healthz"] / medians["/v1/openapi.json"]
        print(
            f"{'healthz / openapi p50 ratio':<34} {ratio:7.2f}x (cost of 4 live dependency checks)"
        )
        asyncio.run(bench_outbox())
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
