"""The adapter cache on the real stores (part of `make bench-inference`; BENCH_ADAPTERS=0 skips).

Publishes rank-8 adapters to S3 + Postgres (a throwaway `acs_bench` database and `acs-bench-*`
bucket, removed afterwards), then measures through `AdapterCache` and one engine:
- cold load: resolve (Postgres) + fetch (S3) + checksum + parse, per adapter, p50/p95;
- warm activation: a host-cached adapter written into a bank slot, p50/p95 (and a full
  `acquire` of it, which adds the resolve query); hot: `acquire` of one already in a slot;
- 16 concurrent streams, each request on the next adapter of a set of 64 or 256, through a
  bank of 32 slots and a host cache of 48 adapters (both smaller than the set), against the
  same load with no adapter.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from functions.inference.adapter_cache import Adapter, AdapterCache, AdapterRef
from functions.inference.adapter_files import fetch_version
from infra import stack
from infra.stack.postgres import LocalPostgres
from infra.stack.provision import delete_bucket
from shared.domain.adapters import registry
from shared.domain.adapters.registry import AdapterRecord
from shared.neural import peft
from shared.neural.engine import DoneEvent, Engine
from shared.neural.lora import random_lora
from shared.neural.sampling import SamplingParams
from shared.platform.aws import s3_client
from shared.platform.db.migrate import migrate
from shared.platform.db.pool import create_pool
from shared.platform.settings import Settings
from shared.platform.template import load_template

STREAMS, RANK, BANK_SLOTS, HOST_ADAPTERS = 16, 8, 32, 48
SET_SIZES = (64, 256)


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


class Bench:
    def __init__(self, engine: Engine, pool: AsyncConnectionPool, settings: Settings):
        self.engine, self.pool, self.s3 = engine, pool, s3_client(settings)
        self.bucket = load_template(settings.template_path, settings).buckets["DataBucket"].name
        self.config = engine.config
        self.fetches = 0
        self.install_ms: list[float] = []

    def cache(self) -> AdapterCache:
        """A fresh cache (empty tiers) over the engine's bank slots 1..BANK_SLOTS."""
        adapter_bytes = self.engine.prepare_adapter(
            random_lora(self.config, rank=RANK, alpha=16, seed=0)
        ).nbytes

        async def resolve(adapter_id: str, version: int | None, user: str | None):
            async with self.pool.connection() as conn:
                return await registry.resolve(conn, adapter_id, version, user_id=user)

        async def fetch(record: AdapterRecord) -> dict[str, bytes]:
            self.fetches += 1
            return await asyncio.to_thread(fetch_version, self.s3, self.bucket, record.prefix)

        def install(slot: int, weights: Adapter) -> None:
            started = time.perf_counter()
            self.engine.install_adapter(slot, weights)
            self.install_ms.append((time.perf_counter() - started) * 1000)

        return AdapterCache(
            resolve=resolve,
            fetch=fetch,
            parse=lambda files: self.engine.prepare_adapter(
                peft.parse(files, self.config, max_rank=RANK)
            ),
            install=install,
            slots=BANK_SLOTS,
            host_budget_bytes=HOST_ADAPTERS * adapter_bytes,
            pin_ttl_s=0,
            registry=CollectorRegistry(),
        )

    async def publish(self, count: int) -> list[str]:
        ids = []
        for seed in range(count):
            weights = random_lora(self.config, rank=RANK, alpha=16, seed=seed)
            record = await registry.publish(
                self.pool, self.s3, self.bucket,
                registry.AdapterFiles(*peft.dump_with_checksum(weights)), owner_user_id=None,
                name=f"bench-{seed}", adapter_type="skill", visibility="global",
            )  # fmt: skip
            ids.append(record.adapter_id)
        return ids

    async def generate(self, prompt: list[int], params: SamplingParams, adapters) -> int:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[DoneEvent] = loop.create_future()

        def deliver(event: object) -> None:
            if isinstance(event, DoneEvent):
                loop.call_soon_threadsafe(done.set_result, event)

        self.engine.submit(prompt, params, deliver, adapters=adapters)
        return (await done).completion_tokens

    async def streams(
        self, cache: AdapterCache, prompt: list[int], params: SamplingParams, ids: list[str]
    ) -> float:
        """tok/s of STREAMS workers; request k of worker w uses ids[(w + STREAMS*k) % n],
        so the set is walked in order, twice for 64 adapters and once for 256."""
        per_stream = max(8, len(ids) // STREAMS)

        async def worker(w: int) -> int:
            tokens = 0
            for k in range(per_stream):
                if not ids:
                    tokens += await self.generate(prompt, params, ())
                    continue
                lease = await cache.acquire([AdapterRef(ids[(w + STREAMS * k) % len(ids)])])
                try:
                    tokens += await self.generate(prompt, params, lease.engine_adapters)
                finally:
                    lease.release()
            return tokens

        started = time.perf_counter()
        total = sum(await asyncio.gather(*(worker(w) for w in range(STREAMS))))
        return total / (time.perf_counter() - started)


async def _timed(action: Awaitable[object]) -> float:
    started = time.perf_counter()
    await action
    return (time.perf_counter() - started) * 1000


async def _run(bench: Bench, prompt: list[int], params: SamplingParams, line) -> None:
    ids = await bench.publish(max(SET_SIZES))
    cache = bench.cache()
    cold = [await _timed(cache.preload(i)) for i in ids[:24]]
    line("adapter cold load (resolve + S3 + checksum + parse)", _spread(cold))
    bench.install_ms.clear()
    warm = [await _timed(_acquire(cache, i)) for i in ids[:24]]
    line("adapter warm activation (host -> bank slot)", _spread(bench.install_ms))
    line("  the same, whole acquire (+ resolve query)", _spread(warm))
    hot = [await _timed(_acquire(cache, i)) for i in ids[:24]]
    line("adapter hot acquire (in a slot; resolve query)", _spread(hot))

    base = await bench.streams(bench.cache(), prompt, params, [])
    line(f"aggregate, {STREAMS} streams, base only", f"{base:7.1f} tok/s")
    for size in SET_SIZES:
        bench.fetches = 0
        rate = await bench.streams(bench.cache(), prompt, params, ids[:size])
        line(
            f"  cycling {size} adapters ({BANK_SLOTS} slots, {HOST_ADAPTERS} cached)",
            f"{rate:7.1f} tok/s  ({base / rate:.2f}x slower; {bench.fetches} S3 loads"
            f" in {STREAMS * max(8, size // STREAMS)} requests)",
        )


def _spread(values_ms: list[float]) -> str:
    return f"p50 {_pct(values_ms, 50):6.2f} ms  p95 {_pct(values_ms, 95):6.2f} ms"


async def _acquire(cache: AdapterCache, adapter_id: str) -> None:
    (await cache.acquire([AdapterRef(adapter_id)])).release()


def bench_adapter_cache(
    engine: Engine, prompt: list[int], new_tokens: int, line: Callable[[str, str], None]
) -> None:
    settings = Settings(stack_name="acs-bench", pg_database="acs_bench", log_level="WARNING")
    state = stack.up(settings)
    try:
        migrate(settings.postgres_dsn)

        async def main() -> None:
            pool = create_pool(settings)
            await pool.open()
            try:
                params = SamplingParams(temperature=0.0, max_tokens=new_tokens)
                await _run(Bench(engine, pool, settings), prompt, params, line)
            finally:
                await pool.close()

        asyncio.run(main())
    finally:
        LocalPostgres(settings).drop_database(settings.pg_database)
        bucket = load_template(settings.template_path, settings).buckets["DataBucket"].name
        delete_bucket(s3_client(settings), bucket)
        if state.started:
            stack.down(settings, only=state.started)
