"""`make bench-load`: concurrent chat turns through a real gateway process, counted by outcome.

Starts the inference service (SmolLM2-135M, `make run`'s slots and queue, no adapter bank) and
a gateway process on a throwaway stack (`acs-bench-load`, removed afterwards), signs up
BENCH_LOAD_USERS (10) users, then for each level in BENCH_LOAD_LEVELS (10, 20, 50) fires that
many blocking `POST /v1/chat` turns at once, spread over the users round robin, each a new
conversation with a question the model answers in a few sentences (`CHAT_MAX_TOKENS` is the
product default, 384).

What a client may get under load: 200, 409 `busy` (the per-user caps: 2 decodes, 3 workflows),
429 or 503, the last two with `Retry-After`. Anything else (a 500, a 503 without Retry-After,
no answer within BENCH_LOAD_TIMEOUT_S) is a failure and printed as such. Latency p50/p95 is
over all answers and over the 200s. After each level the database is checked for what a
failed turn may not leave: a user message with neither an answer nor a `turn_failed` mark,
or an empty conversation.
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import time
import uuid

import httpx
import psycopg

from bench.harness import pct, served, signed_up_clients

USERS = int(os.environ.get("BENCH_LOAD_USERS", "10"))
LEVELS = [int(n) for n in os.environ.get("BENCH_LOAD_LEVELS", "10,20,50").split(",")]
TIMEOUT_S = float(os.environ.get("BENCH_LOAD_TIMEOUT_S", "600"))
STACK, DATABASE = "acs-bench-load", "acs_bench_load"
TOKEN = "bench-load-token"  # noqa: S105 - a throwaway token for the service this script starts
QUESTIONS = (
    "Why is the sky blue?",
    "How do plants make food from sunlight?",
    "What causes the seasons on Earth?",
    "Why do we need sleep?",
    "How does a bicycle stay upright?",
)
ACCEPTED = {"200", "409", "429+retry", "503+retry"}

_ORPHANS = """
SELECT count(*) FROM message u
 WHERE u.sender = 'user' AND NOT u.meta ? 'turn_failed'
   AND NOT EXISTS (SELECT 1 FROM message a WHERE a.parent_id = u.id AND a.sender = 'assistant')
"""
_EMPTY = (
    "SELECT count(*) FROM conversation c WHERE NOT EXISTS"
    " (SELECT 1 FROM message m WHERE m.conversation_id = c.id)"
)


def outcome(response: httpx.Response) -> str:
    code = str(response.status_code)
    if code in ("429", "503"):
        return code + ("+retry" if response.headers.get("retry-after") else " without Retry-After")
    return code


async def _turn(http: httpx.AsyncClient, n: int, tag: str) -> tuple[str, float]:
    text = f"{QUESTIONS[n % len(QUESTIONS)]} (ref {tag}-{n:03d})"
    started = time.perf_counter()
    try:
        response = await http.post("/v1/chat", json={"message": {"content": text}})
        result = outcome(response)
    except httpx.TimeoutException:
        result = "no answer (hang)"
    except httpx.HTTPError as exc:
        result = f"transport error {type(exc).__name__}"
    return result, (time.perf_counter() - started) * 1000


def _integrity(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        orphans = conn.execute(_ORPHANS).fetchone()
        empty = conn.execute(_EMPTY).fetchone()
    return int(orphans[0] if orphans else 0), int(empty[0] if empty else 0)


def _report(level: int, results: list[tuple[str, float]], wall_s: float, dsn: str) -> bool:
    counts = collections.Counter(r for r, _ in results)
    every = [ms for _, ms in results]
    ok = [ms for r, ms in results if r == "200"]
    orphans, empty = _integrity(dsn)
    shown = ", ".join(f"{n} x {r}" for r, n in sorted(counts.items()))
    print(f"{level:3d} concurrent turns, {USERS} users ({wall_s:.0f} s): {shown}")

    def spread(label: str, ms: list[float]) -> str:
        return f"{label} p50 {pct(ms, 50) / 1e3:6.1f} s  p95 {pct(ms, 95) / 1e3:6.1f} s"

    print("      " + spread("all answers", every) + ("   " + spread("200s", ok) if ok else ""))
    print(
        f"      unanswered user messages not marked failed: {orphans}; empty conversations: {empty}"
    )
    return set(counts) <= ACCEPTED and orphans == 0 and empty == 0


async def _run(base: str, dsn: str) -> bool:
    clients = await signed_up_clients(base, USERS, timeout_s=TIMEOUT_S)
    tag, good = uuid.uuid4().hex[:6], True
    try:
        await _turn(clients[0], 0, f"{tag}-warm")  # pools, imports, first plans: not measured
        for level in LEVELS:
            started = time.perf_counter()
            results = await asyncio.gather(
                *(_turn(clients[n % USERS], n, f"{tag}-{level}") for n in range(level))
            )
            good &= _report(level, list(results), time.perf_counter() - started, dsn)
    finally:
        for http in clients:
            await http.aclose()
    return good


def main() -> int:
    with served(STACK, DATABASE, token=TOKEN, inference_env={"INFERENCE_ADAPTER_SLOTS": "0"}) as up:
        print(f"SmolLM2-135M f32, {os.cpu_count()} CPUs, inference service and gateway with"
              f" make run's settings; logs in {up.logs}")  # fmt: skip
        good = asyncio.run(_run(up.base, up.settings.postgres_dsn))
    print(
        "outcomes: only 200/409/429/503 with Retry-After, nothing half-written:",
        "yes" if good else "NO",
    )
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
