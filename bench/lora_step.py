"""Decode steps with per-row LoRA adapters, one implementation at a time, on random weights of
SmolLM2-135M's shapes: the device cost of multi-LoRA without the engine's host loop.

B rows decode together, row i on its own rank-8 adapter (bank slot i + 1, so B distinct
adapters), through each implementation of `shared.neural.lora` ("gather", "dense", "ragged"),
against the same rows on the base model. Each device call runs `--steps` greedy decode steps in
one `lax.fori_loop` (as the engine's decode loop does), so the host's share is small; the
figure is the median time per step over `--calls` calls after a warm-up call (the variants
taking turns call by call), and the ratio to the base. The rows' adapter input is built once
(as the engine does per batch membership) and is not timed; its build time is printed apart.
Imports only the model package, like bench/engine_random.py, so it runs on a GPU machine
without the stack. The last line is JSON.

    python -m bench.lora_step                          # CPU: 16 rows; GPU: 64 rows
    python -m bench.lora_step --rows 64 --impl gather,dense,ragged
    python -m bench.lora_step --tiny                   # a 2-layer model, for tests and trials

On a GPU whose JAX has the Pallas Triton lowering of ragged_dot, "ragged" is also timed with
it ("ragged+triton").
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from shared.neural.config import LlamaConfig
from shared.neural.lora import LORA_IMPLS, LoraBatch, gather, install, new_bank, pack, random_lora
from shared.neural.model import KVCache, build_model

SMOLLM2_135M = LlamaConfig()  # the defaults are SmolLM2-135M's shapes
TINY = LlamaConfig(
    vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, max_seq_len=512
)
LORA_RANK = 8
PROMPT = 128  # rows decode at positions 128.. and attend to the first 256 cache positions
ATTEND = 256


def _decoder(model: Any, steps: int) -> Any:
    """A jitted call of `steps` greedy decode steps for rows [B] (cache donated)."""
    graphdef, state = nnx.split(model)

    @functools.partial(jax.jit, donate_argnums=(2,))
    def run(
        state: Any, token: jax.Array, cache: KVCache, lora: LoraBatch | None
    ) -> tuple[jax.Array, KVCache]:
        model = nnx.merge(graphdef, state)

        def body(i: jax.Array, carry: tuple[jax.Array, KVCache]) -> tuple[jax.Array, KVCache]:
            token, cache = carry
            positions = jnp.full((token.shape[0], 1), PROMPT, jnp.int32) + i
            logits, cache = model(token[:, None], positions, cache, ATTEND, lora=lora)
            return jnp.argmax(logits[:, -1], axis=-1).astype(jnp.int32), cache

        return jax.lax.fori_loop(0, steps, body, (token, cache))

    return functools.partial(run, state)


def _interleaved(
    run: Any, config: LlamaConfig, rows: int, variants: dict[str, Any], calls: int, steps: int
) -> dict[str, float]:
    """Median seconds per decode step of each variant (its adapter input, None: the base),
    after one warm-up (compile) call each; the variants take turns call by call, so a drift in
    the machine's speed (other processes, clocks) falls on all of them alike."""
    state = {}
    for name, lora in variants.items():
        with _context(name):
            cache = KVCache.zeros(config, batch=rows, length=ATTEND)
            token, cache = run(jnp.zeros(rows, jnp.int32), cache, lora)
            token.block_until_ready()
        state[name] = (token, cache)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(calls):
        for name, lora in variants.items():
            token, cache = state[name]
            with _context(name):
                started = time.perf_counter()
                token, cache = run(token, cache, lora)
                token.block_until_ready()
                times[name].append((time.perf_counter() - started) / steps)
            state[name] = (token, cache)
    return {name: statistics.median(values) for name, values in times.items()}


def _context(name: str) -> Any:
    """The variant "ragged+triton" runs with JAX's Pallas Triton kernel for ragged_dot (a
    GPU-only lowering, off by default; the flag is part of jit's cache key, so both variants
    compile and run apart)."""
    if name == "ragged+triton":
        from jax._src import config as jax_config

        return jax_config.jax_ragged_dot_use_gpu_pallas_triton_lowering(True)
    return contextlib.nullcontext()


def _triton_ragged_dot() -> bool:
    """Whether this JAX has the Pallas Triton lowering of ragged_dot (and a GPU to run it)."""
    try:
        found = importlib.util.find_spec("jax._src.lax.pallas_lowerings.gpu.ragged_dot")
    except ModuleNotFoundError:
        return False
    return found is not None and jax.devices()[0].platform == "gpu"


def _parse(argv: Sequence[str] | None, on_gpu: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lora_step", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 64-wide model")
    parser.add_argument("--rows", type=int, help="rows, each on its own adapter (CPU 16, GPU 64)")
    parser.add_argument("--impl", default=",".join(LORA_IMPLS), help="implementations to time")
    parser.add_argument("--steps", type=int, default=16, help="decode steps per device call")
    parser.add_argument("--calls", type=int, help="timed calls (default CPU 5, GPU 20)")
    parser.add_argument(
        "--bank-dtype", choices=["float32", "bfloat16"], default="float32", help="adapters' dtype"
    )
    args = parser.parse_args(argv)
    args.rows = args.rows or (64 if on_gpu else 16)
    args.calls = args.calls or (20 if on_gpu else 5)
    args.impl = args.impl.split(",")
    unknown = set(args.impl) - set(LORA_IMPLS)
    if unknown:
        parser.error(f"unknown --impl {sorted(unknown)}; choose from {LORA_IMPLS}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    device = jax.devices()[0]
    args = _parse(argv, on_gpu=device.platform != "cpu")
    config = TINY if args.tiny else SMOLLM2_135M
    print(f"device {device} ({device.platform}, {device.device_kind}), jax {jax.__version__}")
    print(
        f"{'tiny' if args.tiny else 'SmolLM2-135M shapes'}, random f32 weights;"
        f" {args.rows} rows on {args.rows} distinct rank-{LORA_RANK} adapters,"
        f" {args.steps} steps a call, attending to {ATTEND} positions; {args.bank_dtype} bank",
        flush=True,
    )
    run = _decoder(build_model(config, seed=0), args.steps)
    packed = [
        pack(random_lora(config, rank=LORA_RANK, alpha=16, seed=i + 1), config, rank=LORA_RANK)
        for i in range(args.rows)
    ]
    slots = np.arange(1, args.rows + 1, dtype=np.int32)[:, None]
    gates = np.ones((args.rows, 1), np.float32)
    variants: dict[str, Any] = {"base": None}
    built = {}
    for impl in args.impl:
        bank = new_bank(
            config, slots=args.rows + 1, rank=LORA_RANK, impl=impl, dtype=args.bank_dtype
        )
        for slot, fields in enumerate(packed, start=1):
            bank = install(bank, np.int32(slot), fields)
        started = time.perf_counter()
        variants[impl] = jax.block_until_ready(gather(bank, slots, gates))
        built[impl] = time.perf_counter() - started  # gather's compile included (first call)
    if "ragged" in variants and _triton_ragged_dot():
        args.impl.append("ragged+triton")
        variants["ragged+triton"], built["ragged+triton"] = variants["ragged"], built["ragged"]
    times = _interleaved(run, config, args.rows, variants, args.calls, args.steps)
    base = times["base"]
    print(f"{'base':<8} {base * 1000:9.2f} ms/step", flush=True)
    figures: dict[str, Any] = {"base_ms": base * 1000}
    for impl in args.impl:
        step = times[impl]
        figures[impl] = {"ms": step * 1000, "ratio": step / base, "build_ms": built[impl] * 1000}
        print(
            f"{impl:<8} {step * 1000:9.2f} ms/step  {step / base:5.2f}x base"
            f"  (rows' input built in {built[impl] * 1000:.0f} ms)",
            flush=True,
        )
    result = {
        "device": str(device),
        "platform": device.platform,
        "jax": jax.__version__,
        "model": "tiny" if args.tiny else "SmolLM2-135M",
        "rows": args.rows,
        "rank": LORA_RANK,
        "bank_dtype": args.bank_dtype,
        "steps": args.steps,
        "figures": figures,
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
