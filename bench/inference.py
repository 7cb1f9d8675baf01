"""`make bench-inference`: SmolLM2 through the engine alone and through the HTTP service.

Prints: time to first token p50/p95 for a 128-token prompt; decode tok/s at batch 1; aggregate
tok/s (prefill included) with 1, 4 and 16 concurrent streams, engine alone and via HTTP;
16 streams on 16 distinct LoRA adapters (and on 3 each) against the base-only path;
MiniLM sequences/s at 128 tokens; peak RSS. Generation ignores end-of-sequence so every stream
produces exactly its token budget. BENCH_STREAMS=1,4 limits the stream counts;
the adapter cache on the real S3 and Postgres (cold load, warm activation, 64 and 256
adapters cycling through smaller tiers: bench/adapters.py).
BENCH_LORA=0, BENCH_ADAPTERS=0 and BENCH_HTTP=0 skip those parts.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time

import httpx
import jax

from bench.adapters import bench_adapter_cache
from bench.engine_run import Run
from shared.neural.convert import ensure_weights
from shared.neural.engine import Engine
from shared.neural.lora import random_lora
from shared.neural.minilm import Embedder
from shared.neural.model import build_model
from shared.neural.sampling import SamplingParams
from shared.neural.tokenizer import ChatTokenizer
from shared.neural.weights import TOKENIZER_FILE, load_checkpoint
from shared.platform.settings import get_settings

PROMPT_TOKENS = 128
NEW_TOKENS = int(os.environ.get("BENCH_NEW_TOKENS", "64"))
STREAMS = [int(n) for n in os.environ.get("BENCH_STREAMS", "1,4,16").split(",")]
TOKEN = "bench-token"  # noqa: S105 - a throwaway token for the service this script starts


def _line(label: str, value: str) -> None:
    print(f"{label:<44} {value}")


def _prompt(tokenizer: ChatTokenizer) -> list[int]:
    words = tokenizer.encode(" ".join(["history of the river valley and its people"] * 40))
    return words[:PROMPT_TOKENS]


def _engine(model_args: tuple, tokenizer: ChatTokenizer, **options: int) -> Engine:
    """An engine sized for the benchmark's prompts, ignoring end-of-sequence."""
    config, tensors = model_args
    return Engine(
        build_model(config, tensors),
        decode_text=tokenizer.decode,
        stop_token_ids=[],
        max_seq_len=PROMPT_TOKENS + NEW_TOKENS + 64,
        queue_size=64,
        prefill_buckets=(PROMPT_TOKENS,),
        **options,
    )


def bench_engine(model_args: tuple, tokenizer: ChatTokenizer) -> None:
    prompt = _prompt(tokenizer)
    params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS)
    for slots in STREAMS:
        engine = _engine(model_args, tokenizer, slots=slots)
        # Every prefill and decode shape compiles before the clock starts, as in the service.
        engine.compile_shapes(max_len=PROMPT_TOKENS, max_decode_len=engine.max_seq_len)
        engine.start()
        warm = Run()
        engine.submit(prompt, SamplingParams(temperature=0.0, max_tokens=4), warm)
        warm.done.wait()
        if slots == 1:
            ttfts = []
            for _ in range(10):
                run = Run()
                engine.submit(prompt, SamplingParams(temperature=0.0, max_tokens=1), run)
                run.done.wait()
                ttfts.append(run.token_times[0] - run.submitted)
            q = statistics.quantiles(ttfts, n=20)
            p50, p95 = statistics.median(ttfts) * 1000, q[18] * 1000
            _line(
                f"TTFT, {PROMPT_TOKENS}-token prompt (engine)",
                f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms",
            )
            run = Run()
            engine.submit(prompt, params, run)
            run.done.wait()
            decode = (len(run.token_times) - 1) / (run.token_times[-1] - run.token_times[0])
            _line("decode, batch 1 (engine)", f"{decode:7.1f} tok/s")
        runs = [Run() for _ in range(slots)]
        started = time.monotonic()
        for run in runs:
            engine.submit(prompt, params, run)
        for run in runs:
            run.done.wait()
        total = sum(r.result.completion_tokens for r in runs if r.result)
        rate = total / (time.monotonic() - started)
        _line(f"aggregate, {slots:2d} streams (engine, prefill incl.)", f"{rate:7.1f} tok/s")
        engine.stop(drain=False)


async def _http_streams(url: str, n: int) -> float:
    body = {"prompt": "", "temperature": 0, "max_tokens": NEW_TOKENS, "stream": True}
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def one(http: httpx.AsyncClient, prompt: str) -> int:
        """Generated tokens, from the usage in the last chunk."""
        async with http.stream(
            "POST", "/v1/completions", json={**body, "prompt": prompt}
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {") and '"usage"' in line:
                    return int(json.loads(line[6:])["usage"]["completion_tokens"])
        return 0

    words = " ".join(["history of the river valley and its people"] * 14)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
        await one(http, words)  # warm
        started = time.monotonic()
        counts = await asyncio.gather(*(one(http, words) for _ in range(n)))
        elapsed = time.monotonic() - started
    return sum(counts) / elapsed


def bench_service() -> None:
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "INFERENCE_PORT": str(port),
        "INFERENCE_TOKEN": TOKEN,
        "INFERENCE_SLOTS": str(max(STREAMS)),
        "INFERENCE_MAX_SEQ_LEN": "512",
        "LOG_LEVEL": "WARNING",
    }
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "functions.inference"], env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        for n in STREAMS:
            rate = asyncio.run(_http_streams(url, n))
            print(
                f"aggregate, {n:2d} streams (HTTP service, SSE)  {rate:7.1f} tok/s"
                f"  ({max(STREAMS)} slots, prefill incl.)"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _aggregate(engine: Engine, prompt: list[int], sets: list[list[tuple[int, float]]]) -> float:
    """tok/s of one stream per adapter set, all submitted at once (prefill included)."""
    params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS)
    runs = [Run() for _ in sets]
    started = time.monotonic()
    for run, adapters in zip(runs, sets, strict=True):
        engine.submit(prompt, params, run, adapters=adapters)
    for run in runs:
        run.done.wait()
    return sum(r.result.completion_tokens for r in runs if r.result) / (time.monotonic() - started)


def bench_lora(model_args: tuple, tokenizer: ChatTokenizer) -> None:
    """16 streams each on its own rank-8 adapter (q/k/v/o) against the same load on the
    base-only path, in one engine; then 3 adapters per stream."""
    config = model_args[0]
    streams, rank = 16, 8
    prompt = _prompt(tokenizer)
    engine = _engine(
        model_args, tokenizer, slots=streams, adapter_slots=3 * streams, adapter_rank=rank
    )
    for slot in range(1, 3 * streams + 1):
        engine.install_adapter(slot, random_lora(config, rank=rank, alpha=16, seed=slot))
    engine.compile_shapes(
        max_len=PROMPT_TOKENS, max_decode_len=engine.max_seq_len, adapter_widths=(1, 3)
    )
    engine.start()
    base = _aggregate(engine, prompt, [[] for _ in range(streams)])
    one = _aggregate(engine, prompt, [[(i + 1, 1.0)] for i in range(streams)])
    three = _aggregate(
        engine,
        prompt,
        [[(3 * i + 1, 0.5), (3 * i + 2, 0.3), (3 * i + 3, 0.2)] for i in range(streams)],
    )
    _line(f"aggregate, {streams} streams, base only (engine)", f"{base:7.1f} tok/s")
    _line(
        f"  {streams} distinct rank-{rank} adapters",
        f"{one:7.1f} tok/s  ({base / one:.2f}x slower)",
    )
    _line(
        f"  3 adapters per stream ({3 * streams} distinct)",
        f"{three:7.1f} tok/s  ({base / three:.2f}x slower)",
    )
    if os.environ.get("BENCH_ADAPTERS", "1") != "0":
        bench_adapter_cache(engine, prompt, NEW_TOKENS, _line)
    engine.stop(drain=False)


def bench_embeddings() -> None:
    embedder = Embedder()
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"] * 20
    while embedder.token_counts([" ".join(words)])[0] > 127:  # [CLS] ... [SEP] included
        words.pop()
    texts = [" ".join([*words, str(i)]) for i in range(64)]
    assert max(embedder.token_counts(texts)) <= 128
    embedder.embed(texts[:32])
    started = time.monotonic()
    for start in range(0, len(texts), 32):
        embedder.embed(texts[start : start + 32])
    rate = len(texts) / (time.monotonic() - started)
    _line("embeddings, 128 tokens, batch 32", f"{rate:7.1f} seq/s")


def main() -> int:
    settings = get_settings()
    jax.config.update("jax_compilation_cache_dir", str(settings.jax_cache_dir))
    directory = ensure_weights(settings.weights_dir)
    checkpoint = load_checkpoint(directory)
    tokenizer = ChatTokenizer.from_file(directory / TOKENIZER_FILE)
    print(
        f"SmolLM2-135M f32 on {jax.devices()[0].platform}, {os.cpu_count()} CPUs;"
        f" {PROMPT_TOKENS}-token prompts, {NEW_TOKENS} new tokens per stream"
    )
    bench_engine((checkpoint.config, checkpoint.tensors), tokenizer)
    if os.environ.get("BENCH_LORA", "1") != "0":
        bench_lora((checkpoint.config, checkpoint.tensors), tokenizer)
    bench_embeddings()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _line("peak RSS (engine + embeddings process)", f"{rss_mib:7.0f} MiB")
    if os.environ.get("BENCH_HTTP", "1") != "0":
        bench_service()
    return 0


if __name__ == "__main__":
    sys.exit(main())
