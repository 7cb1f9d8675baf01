"""The inference service's adapter cache as operations see it: the EMF line that carries its
hit rate to CloudWatch (the metrics template.yaml's alarm watches), and the eviction of
deleted adapter versions (told by Postgres: functions/inference/adapter_deletions.py)."""

from __future__ import annotations

import asyncio
import io

from functions.inference.adapter_cache import AdapterRef
from functions.inference.cache_emf import AdapterCacheEmf
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import load_raw
from tests.unit.test_adapter_cache import Store, _cache, _metric
from tests.unit.test_emf import check_emf


def _lines(out: io.StringIO) -> list[dict]:
    return [check_emf(line) for line in out.getvalue().splitlines()]


async def _use(cache, adapter_id: str) -> None:
    (await cache.acquire([AdapterRef(adapter_id)])).release()


async def test_the_emf_line_carries_the_deltas_since_the_last_one() -> None:
    store = Store()
    a, b = store.publish(), store.publish()
    cache, registry = _cache(store, slots=1)
    out = io.StringIO()
    lines = AdapterCacheEmf(registry, stream=out)
    assert lines.flush() is False and out.getvalue() == ""  # nothing asked: no line
    await _use(cache, a)  # fetched: a miss
    await _use(cache, a)  # in its slot: a hit
    await _use(cache, b)  # fetched into the only slot: a miss
    await _use(cache, a)  # slot taken by b, still parsed in the host tier: a hit
    assert lines.flush() is True
    [first] = _lines(out)
    assert (first["AdapterCacheHits"], first["AdapterCacheMisses"]) == (2, 2)
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "AdaptiveChat" and directive["Dimensions"] == [[]]
    assert {m["Unit"] for m in directive["Metrics"]} == {"Count"}
    await _use(cache, a)
    assert lines.flush() is True
    assert [(d["AdapterCacheHits"], d["AdapterCacheMisses"]) for d in _lines(out)][1] == (1, 0)
    assert lines.flush() is False and len(_lines(out)) == 2


async def test_the_run_loop_writes_its_last_line_when_cancelled() -> None:
    store = Store()
    a = store.publish()
    cache, registry = _cache(store)
    out = io.StringIO()
    task = asyncio.create_task(AdapterCacheEmf(registry, stream=out).run(3600))
    await _use(cache, a)
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    [line] = _lines(out)
    assert (line["AdapterCacheHits"], line["AdapterCacheMisses"]) == (0, 1)


def test_the_alarm_watches_exactly_what_the_service_emits() -> None:
    alarm = load_raw(REPO_ROOT / "template.yaml")["Resources"]["AdapterCacheMissRateAlarm"]
    queries = alarm["Properties"]["Metrics"]
    watched = [q["MetricStat"]["Metric"] for q in queries if "MetricStat" in q]
    # No Dimensions: the line's only dimension set is the empty one.
    assert watched == [
        {"Namespace": "AdaptiveChat", "MetricName": "AdapterCacheHits"},
        {"Namespace": "AdaptiveChat", "MetricName": "AdapterCacheMisses"},
    ]
    nested = load_raw(REPO_ROOT / "infra" / "aws" / "inference.yaml")
    task = nested["Resources"]["InferenceTaskDefinition"]
    [container] = task["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["METRICS_EMF"] == "true" and "metrics_emf" in Settings.model_fields
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def _key(store: Store, adapter_id: str) -> tuple[str, int]:
    return (adapter_id, store.current[adapter_id])


async def test_evicting_deleted_versions_drops_them_from_both_tiers() -> None:
    store = Store()
    a1, a2, b1 = store.publish("persona"), store.publish("skill"), store.publish("persona")
    cache, registry = _cache(store, slots=2)
    for adapter_id in (a1, a2, b1):  # a1 leaves its slot (LRU) but stays in the host tier
        await _use(cache, adapter_id)
    assert cache.cached_keys() == {_key(store, a) for a in (a1, a2, b1)}
    doomed = {_key(store, a1), _key(store, a2), ("not-held", 1)}
    assert cache.evict(doomed) == 2  # what it did not hold is ignored
    assert {entry["id"] for entry in cache.loaded()} == {b1}
    assert _metric(registry, "inference_adapter_evictions_total", tier="host") == 2
    assert cache.evict(doomed) == 0  # again: nothing left, nothing changes
    # Freed slots are reused before anyone's adapter is evicted; a1 comes from the store again.
    fetched = len(store.fetches)
    await _use(cache, a1)
    assert len(store.fetches) == fetched + 1
    assert {entry["id"] for entry in cache.loaded()} == {a1, b1}


async def test_a_slot_a_running_request_holds_is_freed_when_it_lets_go() -> None:
    store = Store()
    a = store.publish("persona")
    cache, registry = _cache(store, slots=1)
    lease = await cache.acquire([AdapterRef(a)])
    assert cache.evict({_key(store, a)}) == 1
    assert [e["on_device"] for e in cache.loaded()] == [True]  # still generating with it
    lease.release()
    assert cache.loaded() == []
    assert _metric(registry, "inference_adapter_evictions_total", tier="device") == 1
    other = store.publish()
    await _use(cache, other)  # the freed slot takes it: no eviction needed
    assert _metric(registry, "inference_adapter_evictions_total", tier="device") == 1


def _signal_fetches(store: Store) -> asyncio.Event:
    """An event set when the store's fetch starts; the fetch then takes a moment."""
    started, fetch = asyncio.Event(), store.fetch
    store.fetch_delay_s = 0.05

    async def signalling(record):
        started.set()
        return await fetch(record)

    store.fetch = signalling  # type: ignore[method-assign]
    return started


async def test_a_fetch_in_flight_when_its_version_is_deleted_is_not_kept() -> None:
    """The request that was waiting on the fetch is served (it was admitted before the
    deletion, like a running request), but the weights stay in neither tier afterwards."""
    store = Store()
    a = store.publish("persona")
    started = _signal_fetches(store)
    cache, _ = _cache(store, slots=2)
    acquiring = asyncio.ensure_future(cache.acquire([AdapterRef(a)]))
    await started.wait()  # the fetch is in flight
    assert cache.evict({_key(store, a)}) == 1  # in flight counts as held
    lease = await acquiring
    assert lease.engine_adapters == ((1, 1.0),)
    assert [(e["in_host_cache"], e["on_device"]) for e in cache.loaded()] == [(False, True)]
    lease.release()
    assert cache.loaded() == [] and cache.cached_keys() == set()
    assert cache._doomed == set()  # nothing left to remember


async def test_a_preload_overtaken_by_the_deletion_keeps_nothing() -> None:
    store = Store()
    a = store.publish("persona")
    started = _signal_fetches(store)
    cache, _ = _cache(store)
    preloading = asyncio.ensure_future(cache.preload(a, pin_s=600))
    await started.wait()
    assert cache.evict({_key(store, a)}) == 1
    await preloading
    assert cache.cached_keys() == set() and cache._doomed == set()
