"""`make bench-chat`: what a chat turn costs besides the model, and time to first token through
the gateway for 1 and 8 concurrent users.

Starts the inference service (SmolLM2-135M and MiniLM, no adapter bank) and a real gateway
process pointed at it, on a throwaway stack name and database (`acs-bench-chat`, removed
afterwards), signs users up through the API and runs streamed turns (`POST /v1/chat`, SSE).
A conversation is BENCH_CHAT_TURNS (12) short questions, answered in at most
BENCH_CHAT_MAX_TOKENS (32) tokens. One unmeasured conversation warms up; then each of the
BENCH_CHAT_USERS (8) users has a conversation, one after another (1 concurrent user), then a new
one each, all at once: the same turns at both levels. Every message is unique (a tag), so each
turn pays the embedding call a new message pays (a repeated text hits the Redis cache).
About 4 minutes on 2 CPUs, the service's start-up included.

Figures per turn (p50/p99):
- TTFT: at the client, from sending the POST to reading the first `token` event.
- model time: the turn's generation calls, timed in the gateway around the inference client
  (bench/chat_gateway.py), from the first read to the last delta: the HTTP exchange with the
  service, queueing for a slot, prefill and decode (and working-memory summaries, if any).
- kernel overhead: the kernel's wall time (`trace.kernel_ms`: `ChatKernel.run` from loading
  working memory to the end of the workflow) minus model time. The kernel's own calls to the
  inference service, /tokenize (working memory's budget) and /v1/embeddings (routing), count as
  overhead (bookkeeping, not the answer) and are also printed on their own line.
- turn overhead at the client: POST to `message_done` minus model time; adds what `kernel_ms`
  leaves out: the gateway, auth, rate limit and caps, writing the user's message, storing the
  answer and working memory, and the SSE relay.
The 1-user figures are the cost itself; at 8 users they include waiting for the CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import pct, served, signed_up_clients

TURNS = int(os.environ.get("BENCH_CHAT_TURNS", "12"))  # per conversation
USERS = int(os.environ.get("BENCH_CHAT_USERS", "8"))
MAX_TOKENS = int(os.environ.get("BENCH_CHAT_MAX_TOKENS", "32"))
STACK, DATABASE = "acs-bench-chat", "acs_bench_chat"
TOKEN = "bench-chat-token"  # noqa: S105 - a throwaway token for the service this script starts
QUESTIONS = (
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What is water made of?",
    "Who wrote Romeo and Juliet?",
    "Why is the sky blue?",
    "Name three primary colours.",
)


@dataclass
class Turn:
    rid: str
    ttft_ms: float
    wall_ms: float
    kernel_ms: float


def _line(label: str, values: list[float], note: str = "") -> None:
    print(f"  {label:<42} p50 {pct(values, 50):8.1f} ms   p99 {pct(values, 99):8.1f} ms{note}")


async def _turn(http: httpx.AsyncClient, conversation: str | None, text: str) -> tuple[Turn, str]:
    # Our own request id (the gateway keeps a plain one): the gateway's timings carry it.
    rid = uuid.uuid4().hex
    body: dict[str, object] = {"message": {"content": text}, "stream": True}
    if conversation:
        body["conversation_id"] = conversation
    first, event, done = None, "", None
    started = time.perf_counter()
    async with http.stream("POST", "/v1/chat", json=body, headers={"x-request-id": rid}) as sse:
        if sse.status_code != 200:
            raise RuntimeError(f"chat answered {sse.status_code}: {(await sse.aread())[:300]!r}")
        async for line in sse.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "token" and first is None:
                    first = time.perf_counter()
            elif line.startswith("data:") and event in ("message_done", "error"):
                done = json.loads(line[5:])
    wall = time.perf_counter() - started
    if event == "error" or done is None or first is None:
        raise RuntimeError(f"turn {rid} ended without tokens or message_done: {done}")
    turn = Turn(rid, (first - started) * 1000, wall * 1000, float(done["trace"]["kernel_ms"]))
    return turn, str(done["conversation_id"])


async def _conversation(http: httpx.AsyncClient, tag: str) -> list[Turn]:
    turns, conversation = [], None
    for i in range(TURNS):
        text = f"{QUESTIONS[i % len(QUESTIONS)]} (ref {tag}-{i:02d})"
        turn, conversation = await _turn(http, conversation, text)
        turns.append(turn)
    return turns


def _timings(path: Path) -> dict[str, dict[str, float]]:
    """Per request id: ms in generate / tokenize / embed calls, summed over the turn."""
    per: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        calls = per.setdefault(str(row["rid"]), {"generate": 0.0, "tokenize": 0.0, "embed": 0.0})
        calls[row["call"]] += row["ms"]
    return per


def _report(label: str, turns: list[Turn], timings: dict[str, dict[str, float]]) -> float:
    missing = [t.rid for t in turns if timings.get(t.rid, {}).get("generate", 0) <= 0]
    if missing:
        raise RuntimeError(f"no model timing for {len(missing)} turns, e.g. {missing[0]}")
    model = [timings[t.rid]["generate"] for t in turns]
    kernel = [t.kernel_ms - m for t, m in zip(turns, model, strict=True)]
    share = statistics.median(k / t.kernel_ms for k, t in zip(kernel, turns, strict=True))
    print(f"{label} ({len(turns)} turns)")
    _line("TTFT through the gateway", [t.ttft_ms for t in turns])
    _line("turn at the client (POST to message_done)", [t.wall_ms for t in turns])
    _line("model time (generation calls)", model)
    _line("kernel overhead (kernel_ms - model)", kernel, f"   ({share:.0%} of kernel_ms, p50)")
    bookkeeping = [timings[t.rid]["tokenize"] + timings[t.rid]["embed"] for t in turns]
    _line("  of which /tokenize + /v1/embeddings", bookkeeping)
    client = [t.wall_ms - m for t, m in zip(turns, model, strict=True)]
    share = statistics.median(c / t.wall_ms for c, t in zip(client, turns, strict=True))
    _line("turn overhead at the client (wall - model)", client, f"   ({share:.0%} of the turn)")
    return pct([t.ttft_ms for t in turns], 50)


async def _run(base: str, timings: Path) -> None:
    clients = await signed_up_clients(base, USERS + 1, timeout_s=600)
    run = uuid.uuid4().hex[:6]
    try:
        warm, users = clients[0], clients[1:]
        # Not measured: pools, imports, first-query plans, and MiniLM's shape for each message
        # length (the tags all have one length, so no measured turn compiles one).
        await _conversation(warm, f"{run}-w00")
        sequential: list[Turn] = []
        for n, http in enumerate(users):
            sequential += await _conversation(http, f"{run}-s{n:02d}")
        together = await asyncio.gather(
            *(_conversation(http, f"{run}-c{n:02d}") for n, http in enumerate(users))
        )
        per = _timings(timings)
        one = _report("1 concurrent user", sequential, per)
        many = _report(f"{USERS} concurrent users", [t for ts in together for t in ts], per)
        print(f"TTFT p50 ratio, {USERS} users / 1 user          {many / one:8.2f}x")
    finally:
        for http in clients:
            await http.aclose()


def main() -> int:
    logs = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    service = {
        "INFERENCE_SLOTS": str(USERS),  # one decode slot per concurrent user
        "INFERENCE_MAX_SEQ_LEN": "1024",  # the longest conversation fits: no summaries
        "INFERENCE_ADAPTER_SLOTS": "0",  # bench users have no adapters to route to
    }
    gateway = {
        "CHAT_MAX_TOKENS": str(MAX_TOKENS),
        "RATE_CHAT_PER_MIN": "100000",  # 60 turns/min per user would throttle a fast machine
        "BENCH_CHAT_TIMINGS": str(logs / "timings.jsonl"),
    }
    with served(STACK, DATABASE, token=TOKEN, logs=logs, inference_env=service,
                gateway_env=gateway, gateway_module="bench.chat_gateway") as up:  # fmt: skip
        print(
            f"SmolLM2-135M f32 via the inference service ({USERS} slots), {os.cpu_count()} CPUs;"
            f" {TURNS} turns per conversation, {MAX_TOKENS}-token answers; logs in {logs}"
        )
        asyncio.run(_run(up.base, logs / "timings.jsonl"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
