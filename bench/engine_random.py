"""`make bench-engine`: the engine on random weights of SmolLM2-135M's shapes, on any machine.

Imports only the model package (`shared.neural`: JAX, Flax, NumPy) and the standard library:
no settings, stack libraries, tokenizer or weights files, so the same script runs here and on a
GPU machine that has JAX but none of the stack (`bench/inference.py` needs all of them). With
random weights the text is noise, but every shape, and so every cost, is the real model's.

Prints the device and dtype, then, through the real `Engine` (admission, continuous batching,
streaming callbacks; end-of-sequence ignored so every stream produces its budget): the cold
compile of the shapes before serving; time to first token p50/p95; decode tok/s at batch 1;
aggregate tok/s (prefill included) at each stream count; N streams on N distinct rank-8 LoRA
adapters against the same streams on the base only. One engine serves every figure, with
`--slots` decode slots (default: the largest stream count, at most 64, so 256 streams queue
for 64 slots): it decodes only the live requests, padded to a power of two, so fewer streams
run at their own width. Where PyTorch and transformers import, their `generate` on the same
device and shapes is the in-run baseline (bench/engine_baseline.py). The last line is a JSON
object with every figure, also written to $OUT/engine_random.json when OUT is set.

    python -m bench.engine_random                  # CPU: 1,16 streams; GPU: 1,16,64,256
    python -m bench.engine_random --tiny           # a 2-layer model, for tests and trials
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx

from bench.engine_baseline import transformers_generate
from bench.engine_run import Run
from bench.output import emit_json
from shared.neural.config import LlamaConfig
from shared.neural.engine import DEFAULT_HORIZON, Engine, default_prefill_rows
from shared.neural.lora import LORA_IMPLS, random_lora
from shared.neural.model import build_model
from shared.neural.sampling import SamplingParams

# SmolLM2-135M as its GGUF metadata describes it (the service reads it from the weights files;
# written out here because they cannot travel). Equal to LlamaConfig's defaults today.
SMOLLM2_135M = LlamaConfig(
    vocab_size=49152,
    d_model=576,
    n_layers=30,
    n_heads=9,
    n_kv_heads=3,
    d_ff=1536,
    rope_theta=100000.0,
    rms_eps=1e-5,
    max_seq_len=8192,
    tie_embeddings=True,
)
TINY = LlamaConfig(
    vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, max_seq_len=512
)
LORA_RANK = 8
MAX_DEFAULT_SLOTS = 64  # as the GPU run: 256 streams queue for 64 slots
WAIT_S = 1800.0  # a stream that takes longer means the engine thread died


def _text(ids: Sequence[int]) -> str:
    """The engine's text decoding, without a tokenizer: one character per token. The engine
    re-decodes the whole completion at every token; a real tokenizer's cost is not measured."""
    return "x" * len(ids)


def _line(label: str, value: str) -> None:
    print(f"{label:<46} {value}", flush=True)


def _wait(runs: Sequence[Run]) -> None:
    for run in runs:
        if not run.done.wait(WAIT_S):
            raise TimeoutError("a stream did not finish: did the engine thread die?")


class Bench:
    """One engine with random weights, and the figures measured through it."""

    def __init__(self, args: argparse.Namespace, config: LlamaConfig, slots: int):
        self.args = args
        self.rng = np.random.default_rng(args.seed)
        model = build_model(config, seed=args.seed, dtype=args.dtype)
        self.dtypes = sorted({str(p.dtype) for p in jax.tree.leaves(nnx.state(model, nnx.Param))})
        self.engine = Engine(
            model,
            decode_text=_text,
            stop_token_ids=[],  # every stream produces its whole budget
            slots=slots,
            max_seq_len=args.prompt_tokens + args.new_tokens + 64,
            queue_size=max(*args.streams, args.lora_streams) + 1,
            prefill_buckets=(args.prompt_tokens,),
            adapter_slots=args.lora_streams,
            adapter_rank=LORA_RANK,
            horizon=args.horizon,
            prefill_rows=args.prefill_rows,
            lora_impl=args.lora_impl[0],
        )
        for slot in range(1, args.lora_streams + 1):
            adapter = random_lora(config, rank=LORA_RANK, alpha=16, seed=slot)
            self.engine.install_adapter(slot, adapter)
        self.vocab = config.vocab_size

    def prompts(self, n: int) -> list[list[int]]:
        """n prompts of random token ids, each its own."""
        ids = self.rng.integers(0, self.vocab, (n, self.args.prompt_tokens))
        return ids.tolist()

    def compile(self, figures: dict[str, float]) -> None:
        """Every prefill and decode shape before serving, as the service does at start; cold:
        this process has compiled nothing and no persistent compilation cache is set."""
        engine, max_len = self.engine, self.args.prompt_tokens
        started = time.monotonic()
        shapes = engine.compile_shapes(max_len=max_len, max_decode_len=engine.max_seq_len)
        figures["compile_shapes"], figures["compile_s"] = shapes, time.monotonic() - started
        _line("compile, base shapes (cold)", f"{shapes:3d} shapes {figures['compile_s']:7.1f} s")
        if self.args.lora_streams:
            # The base shapes are compiled already: this call adds the adapter-width-1 ones.
            shapes = engine.compile_shapes(
                max_len=max_len, max_decode_len=engine.max_seq_len, adapter_widths=(1,)
            )
            figures["compile_lora_shapes"] = shapes
            figures["compile_lora_s"] = time.monotonic() - started
            _line(
                "  with adapter width 1 (cold, in all)",
                f"{shapes:3d} shapes {figures['compile_lora_s']:7.1f} s",
            )
            for impl in self.args.lora_impl[1:]:  # each other implementation's programs too
                engine.set_lora_impl(impl)
                started = time.monotonic()
                engine.compile_shapes(
                    max_len=max_len, max_decode_len=engine.max_seq_len, adapter_widths=(1,)
                )
                seconds = figures[f"compile_lora_{impl}_s"] = time.monotonic() - started
                _line(f"  adapter shapes, lora impl {impl}", f"{seconds:7.1f} s (base cached)")
            engine.set_lora_impl(self.args.lora_impl[0])

    def latency(self, figures: dict[str, float]) -> None:
        """TTFT of one request on an idle engine, then one stream's decode rate."""
        engine, args = self.engine, self.args
        warm = Run()
        engine.submit(self.prompts(1)[0], SamplingParams(temperature=0.0, max_tokens=4), warm)
        _wait([warm])
        ttfts = []
        for prompt in self.prompts(args.ttft_runs):
            run = Run()
            engine.submit(prompt, SamplingParams(temperature=0.0, max_tokens=1), run)
            _wait([run])
            ttfts.append(run.token_times[0] - run.submitted)
        figures["ttft_p50_ms"] = statistics.median(ttfts) * 1000
        figures["ttft_p95_ms"] = statistics.quantiles(ttfts, n=20, method="inclusive")[18] * 1000
        _line(
            f"TTFT, {args.prompt_tokens}-token prompt",
            f"p50 {figures['ttft_p50_ms']:8.1f} ms   p95 {figures['ttft_p95_ms']:8.1f} ms",
        )
        run = Run()
        params = SamplingParams(temperature=0.0, max_tokens=args.new_tokens)
        engine.submit(self.prompts(1)[0], params, run)
        _wait([run])
        times = run.token_times
        figures["decode_b1_tok_s"] = (len(times) - 1) / (times[-1] - times[0])
        _line("decode, batch 1", f"{figures['decode_b1_tok_s']:9.1f} tok/s")

    def aggregate(self, n: int, adapters: bool = False) -> float:
        """tok/s of n streams submitted at once (prefill included); with `adapters`, stream i
        runs on bank slot i + 1, each a distinct adapter."""
        params = SamplingParams(temperature=0.0, max_tokens=self.args.new_tokens)
        runs = [Run() for _ in range(n)]
        prompts = self.prompts(n)
        started = time.monotonic()
        for i, (run, prompt) in enumerate(zip(runs, prompts, strict=True)):
            self.engine.submit(prompt, params, run, adapters=[(i + 1, 1.0)] if adapters else [])
        _wait(runs)
        tokens = sum(r.result.completion_tokens for r in runs if r.result)
        return tokens / (time.monotonic() - started)

    def throughput(self, figures: dict[str, float]) -> None:
        slots = self.engine.slots
        for n in self.args.streams:
            rate = figures[f"aggregate_{n}_tok_s"] = self.aggregate(n)
            _line(f"aggregate, {n:3d} streams on {slots} slots", f"{rate:9.1f} tok/s")
        if self.args.lora_streams:
            self.lora_ratios(figures)

    def lora_ratios(self, figures: dict[str, float]) -> None:
        """The base-only and each adapter implementation's aggregate, measured in alternation
        `--lora-rounds` times: a ratio is the median of the rounds' ratios, so a slow spell of
        a shared machine lands on both sides of it instead of on one."""
        n, impls = self.args.lora_streams, self.args.lora_impl
        bases: list[float] = []
        rates: dict[str, list[float]] = {impl: [] for impl in impls}
        for _ in range(self.args.lora_rounds):
            bases.append(self.aggregate(n))  # no adapters: the bank's layout plays no part
            for impl in impls:
                self.engine.set_lora_impl(impl)  # adapters relaid
                rates[impl].append(self.aggregate(n, adapters=True))
        base = statistics.median(bases)
        figures.update(lora_base_tok_s=base, lora_rounds=self.args.lora_rounds)
        _line(f"aggregate, {n:3d} streams, base only", f"{base:9.1f} tok/s (median)")
        for i, impl in enumerate(impls):
            lora = statistics.median(rates[impl])
            ratio = statistics.median(b / r for b, r in zip(bases, rates[impl], strict=True))
            # The first implementation's figures keep the unqualified names; with more than
            # one, each also has its own.
            keys = ["lora_tok_s", "lora_ratio"] if i == 0 else []
            if len(impls) > 1:
                keys += [f"lora_{impl}_tok_s", f"lora_{impl}_ratio"]
            figures.update(zip(keys, [lora, ratio] * (len(keys) // 2), strict=True))
            _line(
                f"  {n} distinct rank-{LORA_RANK} adapters, {impl}",
                f"{lora:9.1f} tok/s  ({ratio:.2f}x slower, median of "
                f"{self.args.lora_rounds} rounds' ratios)",
            )
        self.engine.set_lora_impl(impls[0])


def _baseline(args: argparse.Namespace, config: LlamaConfig, engine: dict[str, float]) -> Any:
    """transformers' generate beside the engine's figures; never fails the run."""
    if args.no_baseline:
        print("transformers baseline: skipped (--no-baseline)")
        return {"skipped": "--no-baseline"}
    batches = [n for n in args.streams if n <= 64]
    try:
        result = transformers_generate(
            config,
            prompt_tokens=args.prompt_tokens,
            new_tokens=args.new_tokens,
            batches=batches,
            seed=args.seed,
        )
    except Exception as error:  # an out-of-memory or API drift must not lose the engine's figures
        print(f"transformers baseline: failed ({type(error).__name__}: {error})")
        return {"skipped": f"failed: {type(error).__name__}: {error}"}
    if "skipped" in result:
        print(f"transformers baseline: skipped ({result['skipped']})")
        return result
    print(
        f"transformers {result['transformers']} generate on {result['device']}"
        f" (torch {result['torch']}, float32, greedy, {args.new_tokens} new tokens, same shapes)"
    )
    for key, value in result["figures"].items():
        if key == "decode_b1_tok_s":
            label = "  decode, batch 1"
        else:  # aggregate_<n>_tok_s
            label = f"  aggregate, {int(key.split('_')[1]):3d} streams (one batch)"
        ratio = engine[key] / value if key in engine else float("nan")
        _line(label, f"{value:9.1f} tok/s  (engine {ratio:.1f}x)")
    return result


def _parse(argv: Sequence[str] | None, on_gpu: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_random", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 64-wide model")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="the model's (INFERENCE_DTYPE): bfloat16 stores bf16, accumulates in f32",
    )
    parser.add_argument("--streams", help="stream counts, e.g. 1,16,64,256")
    parser.add_argument("--slots", type=int, help="decode slots (default: most streams, <= 64)")
    parser.add_argument("--lora-streams", type=int, help="streams on distinct adapters; 0: none")
    parser.add_argument(
        "--lora-impl",
        default="gather",
        help=f"multi-LoRA implementations to measure in turn, from {','.join(LORA_IMPLS)}",
    )
    parser.add_argument(
        "--lora-rounds", type=int, default=3,
        help="base and adapter aggregates measured in alternation this many times",
    )  # fmt: skip
    parser.add_argument("--prompt-tokens", type=int, help="default 128 (tiny: 32)")
    parser.add_argument("--new-tokens", type=int, help="default 128 (tiny: 32)")
    parser.add_argument("--ttft-runs", type=int, default=20)
    parser.add_argument(
        "--horizon", type=int, help="decode steps per device call (default: engine's)"
    )
    parser.add_argument(
        "--prefill-rows", type=int, help="prompts per prefill call (default: 1; GPU 8)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip transformers")
    args = parser.parse_args(argv)
    if args.lora_rounds < 1:
        parser.error("--lora-rounds needs at least 1 round")
    if args.ttft_runs < 2:
        parser.error("--ttft-runs needs at least 2 runs for percentiles")
    default = "1,16,64,256" if on_gpu else "1,16"
    args.streams = [int(n) for n in (args.streams or default).split(",")]
    args.lora_impl = args.lora_impl.split(",")
    if not set(args.lora_impl) <= set(LORA_IMPLS):
        parser.error(f"--lora-impl: choose from {','.join(LORA_IMPLS)}")
    args.horizon = args.horizon or DEFAULT_HORIZON
    args.prefill_rows = args.prefill_rows or default_prefill_rows()
    if args.lora_streams is None:
        args.lora_streams = 64 if on_gpu else 16
    size = 32 if args.tiny else 128
    args.prompt_tokens = args.prompt_tokens or size
    args.new_tokens = args.new_tokens or size
    return args


def main(argv: Sequence[str] | None = None) -> int:
    device = jax.devices()[0]
    args = _parse(argv, on_gpu=device.platform != "cpu")
    config = TINY if args.tiny else SMOLLM2_135M
    slots = args.slots or min(max(*args.streams, args.lora_streams), MAX_DEFAULT_SLOTS)
    bench = Bench(args, config, slots)
    if bench.dtypes != [args.dtype]:
        raise SystemExit(f"the model's parameters are {bench.dtypes}, not {args.dtype}")
    name = "tiny (2 layers)" if args.tiny else "SmolLM2-135M shapes"
    _line("device", f"{device} ({device.platform}, {device.device_kind}), jax {jax.__version__}")
    _line("model", f"{name}, random weights, {args.dtype}, {config.n_layers} layers")
    _line(
        "load",
        f"{args.prompt_tokens}-token prompts, {args.new_tokens} new tokens a stream,"
        f" {slots} slots, {os.cpu_count()} CPUs",
    )
    _line("engine", f"{args.horizon} decode steps a call, {args.prefill_rows} prompts a prefill")
    figures: dict[str, float] = {}
    bench.compile(figures)
    bench.engine.start()
    try:
        bench.latency(figures)
        bench.throughput(figures)
    finally:
        bench.engine.stop(drain=False)
    baseline = _baseline(args, config, figures)
    result = {
        "device": str(device),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "jax": jax.__version__,
        "cpus": os.cpu_count(),
        "model": "tiny" if args.tiny else "SmolLM2-135M",
        "weights": "random",
        "dtype": args.dtype,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "slots": slots,
        "streams": args.streams,
        "lora_streams": args.lora_streams,
        "lora_rank": LORA_RANK,
        "lora_impls": args.lora_impl,
        "horizon": args.horizon,
        "prefill_rows": args.prefill_rows,
        "figures": figures,
        "baseline": baseline,
    }
    emit_json(result, "engine_random.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
