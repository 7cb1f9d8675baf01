"""The adapter cache's hit rate for CloudWatch (METRICS_EMF=true, the ECS task): every
METRICS_EMF_INTERVAL_S the service writes one EMF line (shared.platform.emf) with what its
Prometheus counters gained since the last line. The awslogs driver ships stdout to CloudWatch
Logs, which turns the line into the `AdaptiveChat` metrics that template.yaml's
`AdapterCacheMissRateAlarm` watches, with no dimension, as the alarm names them.

What counts: a request's adapter is a hit when it needed no fetch from the object store (it
was in a bank slot, or parsed in the host tier) and a miss when it did (a host-tier miss).
A device miss that the host tier served is a hit here: a slot copy costs milliseconds, a
fetch and parse the time the alarm is about.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

from prometheus_client import CollectorRegistry

from shared.platform import emf

log = logging.getLogger("inference")

HITS, MISSES = "AdapterCacheHits", "AdapterCacheMisses"


def _total(registry: CollectorRegistry, name: str, tier: str) -> float:
    return registry.get_sample_value(f"{name}_total", {"tier": tier}) or 0.0


class AdapterCacheEmf:
    """Turns the cache's running totals into per-interval deltas, one EMF line each."""

    def __init__(self, registry: CollectorRegistry, *, stream: TextIO | None = None):
        self._registry, self._stream = registry, stream
        self._last = (0.0, 0.0)

    def totals(self) -> tuple[float, float]:
        """The cache's counters (functions/inference/adapter_cache.py) since the start."""
        r = self._registry
        hits = _total(r, "inference_adapter_hits", "device") + _total(
            r, "inference_adapter_hits", "host"
        )
        return hits, _total(r, "inference_adapter_misses", "host")

    def flush(self) -> bool:
        """Writes the deltas since the last flush; nothing (False) when nothing was asked."""
        hits, misses = self.totals()
        delta_hits, delta_misses = hits - self._last[0], misses - self._last[1]
        self._last = (hits, misses)
        if delta_hits <= 0 and delta_misses <= 0:
            return False
        document = emf.emf_document(
            metrics={HITS: (delta_hits, "Count"), MISSES: (delta_misses, "Count")},
            dimensions={},
            dimension_sets=[()],
            properties={"service": "inference"},
        )
        emf.write(document, self._stream)
        return True

    async def run(self, interval_s: float) -> None:
        """Until cancelled (the service's shutdown), which flushes what is left."""
        try:
            while True:
                await asyncio.sleep(interval_s)
                self._flush_logged()
        finally:
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:  # a metric must never take the service down
            log.exception("adapter cache EMF line not written")
