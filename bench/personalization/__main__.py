"""`make bench-personalization`: does feedback teach each user's persona? (issue 18)

The product as `make run` starts it (`infra.run`: inference service, gateway, internal and
train hosts, dispatcher) on a throwaway stack, with the settings below. Simulated users, one
per preference in `checkers.py`, plus a control user who never gives feedback, use the public
API only:
1. base: the control user's answers to the 30 held-out prompts (no adapter, no instructions;
   greedy, so the same for every user);
2. each preference user answers a first training prompt and states its preference as an
   `always` note (with a correction when the answer misses it): the held-out answers now show
   **instructions only** (no weights yet);
3. it rates answers to further training prompts (a like when its checker is satisfied, else a
   dislike with its correction), EVENTS events in all; every THRESHOLD events queue a job;
4. once its jobs are done: the held-out answers **as served** (the trained persona, plus any
   instruction its weights have not learned), then with its instructions deleted, the
   **adapter only**; the control user answers again in the same batches (no leak).
A rate is the share of the 30 held-out answers the user's checker accepts, with its 95 %
Wilson interval. Results go to stdout and `bench/results/personalization.json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import clean, free_port, signed_up_clients, wait_ready
from bench.personalization import simulate
from bench.personalization.checkers import PREFERENCES, Preference
from bench.personalization.prompts import HELD_OUT, TRAINING
from bench.personalization.report import Rate, rate, table
from infra import stack
from shared.platform.settings import REPO_ROOT, Settings

STACK, DATABASE = "acs-bench-pers", "acs_bench_pers"
EVENTS = int(os.environ.get("BENCH_PERS_EVENTS", "48"))  # per user, the note's event included
THRESHOLD = int(os.environ.get("BENCH_PERS_THRESHOLD", "24"))
ANSWER_TOKENS = int(os.environ.get("BENCH_PERS_ANSWER_TOKENS", "192"))
PARALLEL = int(os.environ.get("BENCH_PERS_PARALLEL", "2"))  # turns at once per user (its cap)
HELD = HELD_OUT[: int(os.environ.get("BENCH_PERS_HELDOUT", str(len(HELD_OUT))))]  # a smoke run's
ONLY = [p for p in os.environ.get("BENCH_PERS_ONLY", "").split(",") if p]
RESULTS = REPO_ROOT / "bench" / "results" / "personalization.json"
TIMEOUT_S = 900.0


def _env(ports: dict[str, int]) -> dict[str, str]:
    """`make run`'s settings but for ports, the stack, and what a benchmark must state:
    a job per THRESHOLD events with no cooldown or tier delay (one user's session, compressed),
    answers capped at ANSWER_TOKENS (a correction plus the answer fit the CPU's 256-token
    training samples), rate budgets that a script's pace would hit."""
    return {
        "STACK_NAME": STACK, "PG_DATABASE": DATABASE, "LOG_LEVEL": "WARNING",
        "GATEWAY_PORT": str(ports["gateway"]), "INFERENCE_PORT": str(ports["inference"]),
        "FUNCTIONS_INTERNAL_PORT": str(ports["internal"]),
        "FUNCTIONS_HOST_PORTS": json.dumps({"train": ports["train"]}),
        "TRAINING_THRESHOLD_EVENTS": str(THRESHOLD), "TRAINING_COOLDOWN_S": "0",
        "TRAINING_TIER_DELAY_S": json.dumps({"free": 0}),
        "CHAT_MAX_TOKENS": str(ANSWER_TOKENS),
        "RATE_CHAT_PER_MIN": "600", "RATE_FEEDBACK_PER_MIN": "600",
    }  # fmt: skip


def _checked(preference: Preference, answers: list[simulate.Answer]) -> Rate:
    return rate([preference.satisfied(a.content) for a in answers])


async def _journey(http: Any, preference: Preference) -> dict[str, Any]:
    """Steps 2 and 3 for one user."""
    noted = await simulate.teach(http, preference, TRAINING[:1], note_first=True)
    instructed = await simulate.answers(http, HELD, parallel=PARALLEL)
    taught = await simulate.teach(http, preference, TRAINING[1:EVENTS], note_first=False)
    await simulate.settle(http, timeout_s=TIMEOUT_S * 2)
    return {"noted": noted, "taught": taught, "instructed": instructed}


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
    metrics = job.get("metrics") or {}
    heldout = metrics.get("heldout") or {}
    return {
        "status": job["status"], "events": job["events_used"], "promoted": job["promoted"],
        "new_version": job["new_version"], "train_seconds": metrics.get("train_seconds"),
        "seconds": metrics.get("seconds"), "steps": (metrics.get("train") or {}).get("steps"),
        "loss_new": (heldout.get("new") or {}).get("loss"),
        "loss_current": (heldout.get("current") or {}).get("loss"),
        "alignment_new": (heldout.get("new") or {}).get("alignment"),
        "alignment_current": (heldout.get("current") or {}).get("alignment"),
        "reason": job["reason"],
    }  # fmt: skip


async def _run(base: str) -> dict[str, Any]:
    preferences = [p for p in PREFERENCES if not ONLY or p.name in ONLY]
    clients = await simulate_clients(base, len(preferences) + 1)
    control, users = clients[0], dict(zip([p.name for p in preferences], clients[1:], strict=True))
    try:
        started = time.monotonic()
        base_answers = await simulate.answers(control, HELD, parallel=PARALLEL)
        journeys = await asyncio.gather(
            *(_journey(users[p.name], p) for p in preferences)
        )  # fmt: skip
        # Step 4: every user's served answers and the control's, in the same engine batches.
        served, control_after = await _together(users, control, preferences)
        for p in preferences:
            await simulate.drop_instructions(users[p.name])
        adapter_only, control_last = await _together(users, control, preferences)
        result: dict[str, Any] = {"wall_s": round(time.monotonic() - started), "users": {}}
        for p, journey in zip(preferences, journeys, strict=True):
            http = users[p.name]
            fed = [journey["noted"], journey["taught"]]
            state = await simulate.personalization(http)
            result["users"][p.name] = {
                "description": p.description,
                "events": sum(f.events for f in fed), "likes": sum(f.likes for f in fed),
                "corrections": sum(f.corrections for f in fed),
                "refused": sum(f.refused for f in fed),
                "jobs": [_job_row(j) for j in await simulate.jobs(http)],
                "served_version": state["adapter_version"], "has_weights": state["has_weights"],
                "served_adapters": served[p.name][0].adapters if served[p.name] else [],
                "rates": {
                    "base": _checked(p, base_answers).__dict__,
                    "instructions_only": _checked(p, journey["instructed"]).__dict__,
                    "served": _checked(p, served[p.name]).__dict__,
                    "adapter_only": _checked(p, adapter_only[p.name]).__dict__,
                    "control_after": _checked(p, control_after).__dict__,
                    "control_last": _checked(p, control_last).__dict__,
                },
                "samples": {"base": base_answers[0].content,
                            "adapter_only": adapter_only[p.name][0].content},
            }  # fmt: skip
        result["control_unchanged"] = sum(
            a.content == b.content for a, b in zip(base_answers, control_after, strict=True)
        )
        return result
    finally:
        for http in clients:
            await http.aclose()


async def simulate_clients(base: str, count: int) -> list[Any]:
    return await signed_up_clients(base, count, timeout_s=TIMEOUT_S)


async def _together(
    users: dict[str, Any], control: Any, preferences: list[Preference]
) -> tuple[dict[str, list[simulate.Answer]], list[simulate.Answer]]:
    runs = [simulate.answers(users[p.name], HELD, parallel=PARALLEL) for p in preferences]
    *each, control_answers = await asyncio.gather(
        *runs, simulate.answers(control, HELD, parallel=PARALLEL)
    )
    return dict(zip([p.name for p in preferences], each, strict=True)), control_answers


def _print(result: dict[str, Any]) -> None:
    def r(d: dict[str, int]) -> str:
        return str(Rate(d["hits"], d["n"]))

    rows, job_rows = [], []
    for name, user in result["users"].items():
        rates = user["rates"]
        rows.append([
            name, str(user["events"]), r(rates["base"]), r(rates["instructions_only"]),
            r(rates["adapter_only"]), r(rates["served"]), r(rates["control_after"]),
        ])  # fmt: skip
        for n, job in enumerate(user["jobs"], 1):
            job_rows.append([
                name, str(n), str(job["events"]), job["status"], str(job["promoted"]),
                f"{job['train_seconds'] or 0:.0f}",
                f"{(job['train_seconds'] or 0) / max(job['steps'] or 1, 1):.1f}",
                f"{job['seconds'] or 0:.0f}",
                f"{job['loss_current'] or 0:.2f} → {job['loss_new'] or 0:.2f}",
                f"{job['alignment_current'] or 0:.2f} → {job['alignment_new'] or 0:.2f}",
            ])  # fmt: skip
    print(table(["user", "events", "base", "instructions only", "adapter only",
                 "served", "control user after"], rows))  # fmt: skip
    print()
    print(table(["user", "job", "events", "status", "promoted", "training s", "s a step", "job s",
                 "held-out loss (served → new)", "alignment"], job_rows))  # fmt: skip
    print(f"\ncontrol user's answers identical to the base's after training: "
          f"{result['control_unchanged']}/{len(HELD)}; wall {result['wall_s']} s")  # fmt: skip


def main() -> int:
    if sys.argv[1:] == ["--report"]:  # the tables again, from the last run's results
        _print(json.loads(RESULTS.read_text()))
        return 0
    settings = Settings(stack_name=STACK, pg_database=DATABASE, log_level="WARNING")
    state = stack.up(settings)  # ours or reused: infra.run below then leaves it alone
    logs = Path(tempfile.mkdtemp(prefix="bench-personalization-"))
    ports = {name: free_port() for name in ("gateway", "inference", "internal", "train")}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **_env(ports)}
    env.pop("INFERENCE_URL", None)
    with (logs / "run.log").open("wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "infra.run"], cwd=REPO_ROOT, env=env,
                               stdout=out, stderr=out)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{ports['gateway']}"
        wait_ready(base, run, logs / "run.log", TIMEOUT_S)
        print(f"SmolLM2-135M f32, {os.cpu_count()} CPUs; make run's processes with"
              f" {json.dumps({k: v for k, v in _env(ports).items() if 'PORT' not in k})};"
              f" logs in {logs}", flush=True)  # fmt: skip
        result = asyncio.run(_run(base))
        result["settings"] = {"events": EVENTS, "threshold": THRESHOLD,
                              "answer_tokens": ANSWER_TOKENS, "cpus": os.cpu_count()}  # fmt: skip
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
        _print(result)
        return 0
    finally:
        run.send_signal(signal.SIGTERM)  # it stops what it started, then we clean our data
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
        clean(settings)
        if state.started:
            stack.down(settings, only=state.started)


if __name__ == "__main__":
    sys.exit(main())
