"""The adapter cache's rules on a small model config, with an in-memory store standing in for
S3 and Postgres (the integration tests run the same cache on the real ones)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from functions.inference.adapter_cache import AdapterCache, AdapterCapacity, AdapterRef
from shared.domain.adapters.registry import AdapterRecord
from shared.neural.config import LlamaConfig
from shared.neural.lora import AdapterError, LoraWeights, random_lora
from shared.neural.peft import checksum, dump, parse
from shared.platform.errors import NotFound

CONFIG = LlamaConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)
ADAPTER_BYTES = random_lora(CONFIG, rank=4, alpha=8, seed=0).nbytes


class Store:
    """Adapter versions by id; `current` is what a request without a version gets."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, int], dict[str, bytes]] = {}
        self.records: dict[tuple[str, int], AdapterRecord] = {}
        self.current: dict[str, int] = {}
        self.fetches: list[tuple[str, int]] = []
        self.installs: list[int] = []
        self.fetch_delay_s = 0.0

    def publish(self, adapter_type: str = "skill", adapter_id: str | None = None) -> str:
        adapter_id = adapter_id or str(uuid.uuid4())
        version = self.current.get(adapter_id, 0) + 1
        files = dump(random_lora(CONFIG, rank=4, alpha=8, seed=len(self.files)))
        self.files[(adapter_id, version)] = files
        self.records[(adapter_id, version)] = AdapterRecord(
            adapter_id=adapter_id,
            owner_user_id=None,
            name=adapter_id[:8],
            version=version,
            checksum=checksum(files),
            prefix=f"shared/adapters/{adapter_id}/v{version:04d}/",
            rank=4,
            alpha=8.0,
            adapter_type=adapter_type,
            visibility="global",
        )
        self.current[adapter_id] = version
        return adapter_id

    async def resolve(self, adapter_id: str, version: int | None, user: str | None):
        key = (adapter_id, version or self.current.get(adapter_id, 0))
        if key not in self.records:
            raise NotFound(f"adapter {adapter_id} not found")
        return self.records[key]

    async def fetch(self, record: AdapterRecord) -> dict[str, bytes]:
        self.fetches.append(record.key)
        await asyncio.sleep(self.fetch_delay_s)
        return self.files[record.key]

    def install(self, slot: int, weights: LoraWeights) -> None:
        self.installs.append(slot)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(store: Store, *, slots: int = 4, budget_adapters: float = 10, clock=None):
    registry = CollectorRegistry()
    cache = AdapterCache(
        resolve=store.resolve,
        fetch=store.fetch,
        parse=lambda files: parse(files, CONFIG, max_rank=16),
        install=store.install,
        slots=slots,
        host_budget_bytes=int(budget_adapters * ADAPTER_BYTES),
        pin_ttl_s=60,
        registry=registry,
        clock=clock or Clock(),
    )
    return cache, registry


def _metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_miss_then_hits_in_both_tiers() -> None:
    store = Store()
    a = store.publish()
    cache, registry = _cache(store)
    lease = await cache.acquire([AdapterRef(a, 0.5)])
    assert lease.engine_adapters == ((1, 0.5),)
    assert lease.applied == [{"id": a, "version": 1, "weight": 0.5}]
    lease.release()
    again = await cache.acquire([AdapterRef(a, 1.0)])
    assert again.engine_adapters == ((1, 1.0),) and store.fetches == [(a, 1)]
    assert store.installs == [1]
    assert _metric(registry, "inference_adapter_misses_total", tier="host") == 1
    assert _metric(registry, "inference_adapter_hits_total", tier="device") == 1
    assert _metric(registry, "inference_adapter_load_seconds_count") == 1
    assert [entry["id"] for entry in cache.loaded()] == [a]


async def test_concurrent_loads_of_one_adapter_are_coalesced() -> None:
    store = Store()
    a = store.publish()
    store.fetch_delay_s = 0.05
    cache, _ = _cache(store)
    leases = await asyncio.gather(*(cache.acquire([AdapterRef(a)]) for _ in range(6)))
    assert store.fetches == [(a, 1)] and store.installs == [1]
    assert {lease.engine_adapters for lease in leases} == {((1, 1.0),)}


async def test_a_checksum_mismatch_is_refused_and_nothing_is_kept() -> None:
    store = Store()
    a = store.publish()
    store.records[(a, 1)] = replace(store.records[(a, 1)], checksum="sha256:" + "0" * 64)
    cache, registry = _cache(store)
    with pytest.raises(AdapterError, match="checksum"):
        await cache.acquire([AdapterRef(a)])
    assert store.installs == [] and cache.loaded() == [] and cache.host_bytes == 0
    assert _metric(registry, "inference_adapter_load_failures_total", reason="checksum") == 1


async def test_eviction_under_a_small_budget_keeps_pinned_persona_adapters() -> None:
    store, clock = Store(), Clock()
    persona = store.publish("persona")
    skills = [store.publish("skill") for _ in range(4)]
    cache, registry = _cache(store, budget_adapters=2.5, clock=clock)
    for adapter in [persona, *skills]:
        (await cache.acquire([AdapterRef(adapter)])).release()
        clock.now += 1
    in_host = {entry["id"] for entry in cache.loaded() if entry["in_host_cache"]}
    assert in_host == {persona, skills[-1]}
    assert _metric(registry, "inference_adapter_evictions_total", tier="host") == 3
    # Once its user has been idle past the pin's TTL, the persona adapter goes like any other.
    clock.now += 120
    (await cache.acquire([AdapterRef(skills[0])])).release()
    in_host = {entry["id"] for entry in cache.loaded() if entry["in_host_cache"]}
    assert in_host == {skills[-1], skills[0]}


async def test_held_slots_are_never_evicted_and_full_banks_say_so() -> None:
    store = Store()
    a, b, c = store.publish(), store.publish(), store.publish()
    cache, registry = _cache(store, slots=2)
    lease_a = await cache.acquire([AdapterRef(a)])
    lease_b = await cache.acquire([AdapterRef(b)])
    with pytest.raises(AdapterCapacity):
        await cache.acquire([AdapterRef(c)])
    lease_a.release()
    lease_c = await cache.acquire([AdapterRef(c)])
    assert lease_c.engine_adapters == ((1, 1.0),)  # a's slot, freed and reused
    assert lease_b.engine_adapters == ((2, 1.0),)
    assert _metric(registry, "inference_adapter_evictions_total", tier="device") == 1
    # A set that cannot be fully placed releases what it took.
    lease_b.release()
    with pytest.raises(AdapterCapacity):
        await cache.acquire([AdapterRef(a), AdapterRef(b), AdapterRef(store.publish())])
    lease_c.release()
    assert len((await cache.acquire([AdapterRef(a), AdapterRef(b)])).engine_adapters) == 2


async def test_a_new_version_is_served_on_the_next_request() -> None:
    store = Store()
    a = store.publish()
    cache, _ = _cache(store)
    (await cache.acquire([AdapterRef(a)])).release()
    store.publish(adapter_id=a)
    lease = await cache.acquire([AdapterRef(a)])
    assert lease.applied[0]["version"] == 2 and store.fetches == [(a, 1), (a, 2)]
    pinned_old = await cache.acquire([AdapterRef(a, version=1)])
    assert pinned_old.applied[0]["version"] == 1 and len(store.fetches) == 2
    assert [(e["id"], e["version"]) for e in cache.loaded()] == [(a, 2)]


async def test_bad_sets_and_unknown_adapters_are_refused() -> None:
    store = Store()
    a = store.publish()
    cache, _ = _cache(store)
    with pytest.raises(AdapterError, match="twice"):
        await cache.acquire([AdapterRef(a), AdapterRef(a)])
    with pytest.raises(AdapterError, match="at most 3"):
        await cache.acquire([AdapterRef(store.publish()) for _ in range(4)])
    with pytest.raises(NotFound):
        await cache.acquire([AdapterRef(str(uuid.uuid4()))])


async def test_a_failed_install_frees_its_slot() -> None:
    store = Store()
    a, b = store.publish(), store.publish()
    calls = []

    def flaky(slot: int, weights: LoraWeights) -> None:
        calls.append(slot)
        if len(calls) == 1:
            raise RuntimeError("device error")

    store.install = flaky  # type: ignore[method-assign]
    cache, _ = _cache(store, slots=1)
    with pytest.raises(RuntimeError):
        await cache.acquire([AdapterRef(a)])
    assert (await cache.acquire([AdapterRef(b)])).engine_adapters == ((1, 1.0),)
