"""Two tiers between the object store and the engine's adapter bank (S-LoRA's layout).

Host tier: parsed adapters in RAM, LRU by (adapter, version) under a byte budget; persona
adapters are pinned while their user is active (pin renewed on every use, for `pin_ttl_s`).
Device tier: the engine's bank slots, LRU among the slots no running request holds.

A request `acquire`s its adapter set (refcounts on the slots), generates, and `release`s it.
Loads from the store are coalesced (one fetch per version, however many requests wait), the
checksum recorded in the artifact is checked before a version is parsed, and a new version is
a new key, so the first request after a publish gets it. Everything here runs on the event
loop; only fetch, parse and install leave it (threads). `evict` drops versions whose rows were
deleted (an account purge, a deleted adapter) from both tiers, told by Postgres
(functions/inference/adapter_deletions.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.domain.adapters.registry import AdapterRecord
from shared.neural.lora import MAX_ADAPTERS_PER_REQUEST, AdapterError, LoraWeights, PackedLora
from shared.neural.peft import checksum

Key = tuple[str, int]
# What `parse` makes of an adapter's files and `install` writes into a slot: the engine's
# packed layout in the service (activation is then a copy), plain weights in unit tests.
Adapter = LoraWeights | PackedLora


@dataclass(frozen=True)
class AdapterRef:
    """One adapter a request asks for: its id, a version (None: the current one), a gate."""

    adapter_id: str
    weight: float = 1.0
    version: int | None = None


class AdapterCapacity(Exception):
    """Every bank slot is held by running requests; retry shortly."""


@dataclass
class _HostEntry:
    weights: Adapter
    record: AdapterRecord
    pinned_until: float = 0.0


@dataclass
class Lease:
    """An adapter set held for one request: `engine_adapters` go to `Engine.submit`."""

    engine_adapters: tuple[tuple[int, float], ...]
    applied: list[dict[str, Any]]
    _release: Callable[[], None] = field(repr=False)
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._release()


class _Metrics:
    def __init__(self, registry: CollectorRegistry):
        r = registry
        self.hits = Counter("inference_adapter_hits", "Cache hits", ["tier"], registry=r)
        self.misses = Counter("inference_adapter_misses", "Cache misses", ["tier"], registry=r)
        self.evictions = Counter(
            "inference_adapter_evictions", "Adapters evicted", ["tier"], registry=r
        )
        self.failures = Counter(
            "inference_adapter_load_failures", "Loads refused or failed", ["reason"], registry=r
        )
        self.load = Histogram(
            "inference_adapter_load_seconds",
            "Object store fetch + checksum + parse of one adapter version",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.activation = Histogram(
            "inference_adapter_activation_seconds",
            "Writing a host-cached adapter into a bank slot",
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
        )


class AdapterCache:
    def __init__(
        self,
        *,
        resolve: Callable[[str, int | None, str | None], Awaitable[AdapterRecord]],
        fetch: Callable[[AdapterRecord], Awaitable[dict[str, bytes]]],
        parse: Callable[[dict[str, bytes]], Adapter],
        install: Callable[[int, Adapter], None],
        slots: int,
        host_budget_bytes: int,
        pin_ttl_s: float,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._resolve, self._fetch, self._parse, self._install = resolve, fetch, parse, install
        self.slots, self.host_budget_bytes, self.pin_ttl_s = slots, host_budget_bytes, pin_ttl_s
        self._clock = clock
        self._host: OrderedDict[Key, _HostEntry] = OrderedDict()
        self._loading: dict[Key, asyncio.Future[Adapter]] = {}
        self._slot_of: dict[Key, int] = {}
        self._device_lru: OrderedDict[Key, None] = OrderedDict()
        self._refs: dict[Key, int] = {}
        self._installing: dict[Key, asyncio.Future[None]] = {}
        # Deleted versions still in use: slots to free as soon as the running requests
        # holding them let go, and fetches in flight whose weights must not be kept.
        self._doomed: set[Key] = set()
        self._free = list(range(slots, 0, -1))  # bank slot 0 is the zero adapter
        self.metrics = _Metrics(registry)
        Gauge("inference_adapter_host_bytes", "Host cache bytes", registry=registry).set_function(
            lambda: self.host_bytes
        )
        Gauge(
            "inference_adapter_slots_used", "Bank slots holding an adapter", registry=registry
        ).set_function(lambda: len(self._slot_of))

    # --- requests -----------------------------------------------------------------------------
    async def acquire(self, refs: Sequence[AdapterRef], *, user_id: str | None = None) -> Lease:
        """Resolves, loads and installs each adapter of a request; raises NotFound,
        AdapterError (bad files, checksum mismatch), AdapterCapacity or the store's error."""
        if len(refs) > MAX_ADAPTERS_PER_REQUEST:
            raise AdapterError(f"at most {MAX_ADAPTERS_PER_REQUEST} adapters per request")
        if len({ref.adapter_id for ref in refs}) != len(refs):
            raise AdapterError("an adapter is named twice")
        records = [await self._resolve(r.adapter_id, r.version, user_id) for r in refs]
        held: list[Key] = []
        try:
            for record in records:
                held.append(record.key)
                await self._activate(record)
        except BaseException:
            for key in held:
                self._unref(key)
            raise

        def release() -> None:
            for record in records:
                self._unref(record.key)

        return Lease(
            engine_adapters=tuple(
                (self._slot_of[r.key], ref.weight) for r, ref in zip(records, refs, strict=True)
            ),
            applied=[
                {"id": r.adapter_id, "version": r.version, "weight": ref.weight}
                for r, ref in zip(records, refs, strict=True)
            ],
            _release=release,
        )

    async def preload(
        self, adapter_id: str, version: int | None = None, *, pin_s: float = 0.0
    ) -> AdapterRecord:
        """Into the host tier (a warm-up after a publish); `pin_s` pins it that long."""
        record = await self._resolve(adapter_id, version, None)
        try:
            await self._host_weights(record)
        finally:
            self._settle(record.key)
        entry = self._host.get(record.key)  # None: deleted while it was fetched
        if pin_s and entry is not None:
            entry.pinned_until = max(entry.pinned_until, self._clock() + pin_s)
        return record

    def loaded(self) -> list[dict[str, Any]]:
        """The newest loaded version of each adapter, for /v1/models."""
        now, newest = self._clock(), dict[str, int]()
        for key in [*self._host, *self._slot_of]:
            if key[1] >= newest.get(key[0], 0):
                newest[key[0]] = key[1]
        out = []
        for adapter_id, version in newest.items():
            key = (adapter_id, version)
            entry = self._host.get(key)
            out.append(
                {
                    "id": adapter_id,
                    "version": version,
                    "owner": entry.record.owner_user_id if entry else None,
                    "on_device": key in self._slot_of,
                    "in_host_cache": entry is not None,
                    "pinned": bool(entry and entry.pinned_until > now),
                }
            )
        return out

    @property
    def host_bytes(self) -> int:
        return sum(entry.weights.nbytes for entry in self._host.values())

    # --- device tier --------------------------------------------------------------------------
    async def _activate(self, record: AdapterRecord) -> None:
        """Holds one reference on the record's bank slot, installing it there if needed."""
        key = record.key
        if key not in self._slot_of:
            weights = await self._host_weights(record)
            if key not in self._slot_of:  # else another request installed it meanwhile
                self.metrics.misses.labels("device").inc()
                await self._install_into_slot(key, weights)
                return
        self.metrics.hits.labels("device").inc()
        self._refs[key] = self._refs.get(key, 0) + 1
        self._device_lru.move_to_end(key)
        self._renew_pin(key)
        installing = self._installing.get(key)
        if installing is not None:
            await asyncio.shield(installing)

    async def _install_into_slot(self, key: Key, weights: Adapter) -> None:
        slot = self._take_slot()
        self._slot_of[key] = slot
        self._refs[key] = self._refs.get(key, 0) + 1
        self._device_lru[key] = None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._installing[key] = done
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self._install, slot, weights)
        except BaseException as exc:
            # Every request holding a reference (this one and the waiters) drops it on the
            # way out of `acquire`.
            del self._slot_of[key], self._device_lru[key]
            self._free.append(slot)
            done.set_exception(exc)
            done.exception()  # waiters re-raise it; nobody else has to
            raise
        finally:
            del self._installing[key]
        self.metrics.activation.observe(time.perf_counter() - started)
        done.set_result(None)

    def _take_slot(self) -> int:
        if self._free:
            return self._free.pop()
        idle = [k for k in self._device_lru if not self._refs.get(k) and k not in self._installing]
        if not idle:
            raise AdapterCapacity(f"all {self.slots} adapter slots are in use")
        now = self._clock()
        unpinned = [k for k in idle if not self._pinned(k, now)]
        victim = (unpinned or idle)[0]  # LRU order
        self.metrics.evictions.labels("device").inc()
        del self._device_lru[victim], self._refs[victim]
        return self._slot_of.pop(victim)

    def _unref(self, key: Key) -> None:
        if self._refs.get(key, 0) > 0:
            self._refs[key] -= 1
        self._settle(key)

    def _settle(self, key: Key) -> None:
        """A deleted version leaves once nothing uses it: its slot when no request holds or
        installs it, its mark when it has no slot and no fetch of it is in flight."""
        if key not in self._doomed or self._refs.get(key) or key in self._installing:
            return
        if key in self._slot_of:
            self._free_slot(key)
        elif key not in self._loading:
            self._doomed.discard(key)

    def _free_slot(self, key: Key) -> None:
        """The slot goes back to the free list: no request can reach its weights any more,
        and the next install overwrites them."""
        self._free.append(self._slot_of.pop(key))
        del self._device_lru[key]
        self._refs.pop(key, None)
        self._doomed.discard(key)
        self.metrics.evictions.labels("device").inc()

    # --- deleted versions ---------------------------------------------------------------------
    def cached_keys(self) -> set[Key]:
        """Every (adapter, version) held in either tier."""
        return set(self._host) | set(self._slot_of)

    def evict(self, keys: Iterable[Key]) -> int:
        """Drops versions whose rows are gone (their owner's account was purged, or the adapter
        or the version was deleted): host entries and idle slots at once, a slot that a
        running request still holds as soon as that request releases it. A fetch already in
        flight still serves the requests waiting on it (admitted before the deletion, as a
        running request is), but its weights are not kept and the slot it is installed into
        is freed when they end. No new load of a deleted version can start (resolving fails
        on the missing rows). Returns how many of `keys` it held or was fetching; keys it has
        never heard of are ignored, so telling it twice is harmless."""
        in_flight = set(self._loading) & set(keys)
        self._doomed |= in_flight
        held = self.cached_keys() & set(keys)
        for key in held:
            if self._host.pop(key, None) is not None:
                self.metrics.evictions.labels("host").inc()
            if key not in self._slot_of:
                continue
            if self._refs.get(key) or key in self._installing:
                self._doomed.add(key)
            else:
                self._free_slot(key)
        return len(held | in_flight)

    # --- host tier ----------------------------------------------------------------------------
    async def _host_weights(self, record: AdapterRecord) -> Adapter:
        key = record.key
        entry = self._host.get(key)
        if entry is not None:
            self.metrics.hits.labels("host").inc()
            self._host.move_to_end(key)
            self._renew_pin(key)
            return entry.weights
        pending = self._loading.get(key)
        if pending is not None:  # coalesced: one fetch, many waiters
            return await asyncio.shield(pending)
        self.metrics.misses.labels("host").inc()
        loading: asyncio.Future[Adapter] = asyncio.get_running_loop().create_future()
        self._loading[key] = loading
        try:
            weights = await self._load(record)
        except BaseException as exc:
            loading.set_exception(exc)
            loading.exception()
            raise
        finally:
            del self._loading[key]
        if key not in self._doomed:  # else deleted while it was fetched: not kept
            self._store(record, weights)
        loading.set_result(weights)
        return weights

    async def _load(self, record: AdapterRecord) -> Adapter:
        started = time.perf_counter()
        try:
            files = await self._fetch(record)
        except AdapterError:
            self.metrics.failures.labels("missing").inc()
            raise
        except Exception:
            self.metrics.failures.labels("store").inc()
            raise
        if checksum(files) != record.checksum:
            self.metrics.failures.labels("checksum").inc()
            raise AdapterError(
                f"adapter {record.adapter_id} v{record.version}: the files' checksum does not"
                " match the artifact's; refusing to activate it"
            )
        try:
            weights = await asyncio.to_thread(self._parse, files)
        except AdapterError:
            self.metrics.failures.labels("invalid").inc()
            raise
        self.metrics.load.observe(time.perf_counter() - started)
        return weights

    def _store(self, record: AdapterRecord, weights: Adapter) -> None:
        self._host[record.key] = _HostEntry(weights, record)
        self._renew_pin(record.key)
        now, total = self._clock(), self.host_bytes
        for key in list(self._host):
            if total <= self.host_budget_bytes:
                break
            if key == record.key or self._pinned(key, now):
                continue
            total -= self._host.pop(key).weights.nbytes
            self.metrics.evictions.labels("host").inc()

    def _renew_pin(self, key: Key) -> None:
        entry = self._host.get(key)
        if entry is not None and entry.record.adapter_type == "persona":
            entry.pinned_until = max(entry.pinned_until, self._clock() + self.pin_ttl_s)

    def _pinned(self, key: Key, now: float) -> bool:
        entry = self._host.get(key)
        return entry is not None and entry.pinned_until > now
