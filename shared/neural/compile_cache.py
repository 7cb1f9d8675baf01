"""JAX's persistent compilation cache, in a directory of its own per device and jaxlib.

Compiling the engine's shapes is most of a cold start (minutes on a GPU); with the compiled
programs on disk a later process only traces and loads them (the engine's own programs are
kept whole beside them, and loaded without tracing: `programs`). JAX already puts the backend and
jaxlib version into each entry's key, but a directory per device and jaxlib keeps the caches
apart where they are stored and shared: a replica downloads only the entries it can use (the
object store's prefix is the same key, `functions/inference/compile_cache.py`), a jaxlib
upgrade starts from an empty directory instead of carrying dead entries, and a CPU cache is
never offered to a GPU. On a CPU the key also carries the instruction-set flags: XLA compiles
for the host's CPU, so an entry written on a machine with AVX-512 must not run on one without.

Imports only JAX and the standard library (benchmarks use it on machines without the stack).
"""

from __future__ import annotations

import hashlib
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jax
import jaxlib
from jax import monitoring
from jax.experimental.compilation_cache import compilation_cache

HIT, MISS = "/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"
DURATIONS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_s",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    "/jax/core/compile/backend_compile_duration": "backend_s",
}


def cache_key() -> str:
    """`<platform>-<device kind>-jaxlib<version>-<hash>`, e.g.
    `gpu-nvidia-h100-80gb-hbm3-jaxlib0.10.2-3f9a1c2e`: readable, and safe as a directory and an
    object-store prefix. The hash covers what the name leaves out but the programs depend on:
    the runtime's version (the CUDA plugin's, say) and, on a CPU, its architecture and flags."""
    device = jax.devices()[0]
    kind = re.sub(r"[^a-z0-9]+", "-", device.device_kind.lower()).strip("-") or "unknown"
    detail = [device.client.platform_version, platform.machine()]
    if device.platform == "cpu":
        detail.append(_cpu_flags())
    digest = hashlib.sha256("\n".join(detail).encode()).hexdigest()[:8]
    return f"{device.platform}-{kind}-jaxlib{jaxlib.__version__}-{digest}"


def configure(root: Path) -> Path:
    """Points JAX's persistent cache at `root/<cache_key()>` and returns that directory.

    Every program is written, however small or quick to compile: JAX's defaults skip programs
    that compile in under a second, and a start-up that loads 90 shapes pays those seconds
    again each time. Call before the first compilation that should use the cache; a process
    that already compiled with another directory is switched over (JAX opens its cache once).
    JAX's key for an entry covers the directory's path (XLA's GPU autotuning cache lives under
    it and its path is a compile option), so processes that share entries use the same `root`."""
    directory = root / cache_key()
    directory.mkdir(parents=True, exist_ok=True)
    previous = jax.config.values["jax_compilation_cache_dir"]
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # -1: no minimum size, and JAX does not raise it for the filesystem.
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    if previous and previous != str(directory):
        compilation_cache.reset_cache()
    return directory


@dataclass
class CompileStats:
    """What JAX did for the programs of a block: persistent-cache hits (programs loaded) and
    misses (programs compiled and written), and the seconds it spent tracing Python into
    jaxprs, lowering them to XLA, and in the backend (compiling, or loading a hit)."""

    hits: int = 0
    misses: int = 0
    trace_s: float = 0.0
    lower_s: float = 0.0
    backend_s: float = 0.0


@contextmanager
def watching() -> Iterator[CompileStats]:
    """Collects `CompileStats` from JAX's monitoring events while the block runs."""
    stats = CompileStats()

    def on_event(event: str, **_: str | int) -> None:
        if event == HIT:
            stats.hits += 1
        elif event == MISS:
            stats.misses += 1

    def on_duration(event: str, duration_secs: float, **_: str | int) -> None:
        if event in DURATIONS:
            name = DURATIONS[event]
            setattr(stats, name, getattr(stats, name) + duration_secs)

    monitoring.register_event_listener(on_event)
    monitoring.register_event_duration_secs_listener(on_duration)
    try:
        yield stats
    finally:
        monitoring.unregister_event_listener(on_event)
        monitoring.unregister_event_duration_listener(on_duration)


def _cpu_flags() -> str:
    """The host CPU's feature flags (Linux); empty elsewhere, where the architecture must do."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return " ".join(sorted(match.group(1).split())) if match else ""
