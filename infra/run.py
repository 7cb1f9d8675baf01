"""`make run`: the local stack, migrations, the inference service, the gateway, the internal
function host and the queue dispatcher; prints the URL when /healthz is green. Ctrl-C stops
what this run started (a stack that was already running is left running)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from infra import stack
from infra.stack.process import StackError
from shared.config import REPO_ROOT, get_settings
from shared.db.migrate import MigrationError, migrate
from shared.runtime.logs import configure_logging

PROCESSES = {
    "inference": [sys.executable, "-m", "functions.inference"],
    "gateway": [sys.executable, "-m", "infra.gateway"],
    "functions-internal": [sys.executable, "-m", "infra.gateway", "--internal"],
    "dispatcher": [sys.executable, "-m", "infra.dispatcher"],
}


def _wait_healthy(url: str, children: dict[str, subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, child in children.items():
            if child.poll() is not None:
                raise StackError(f"{name} exited with {child.returncode} during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise StackError(f"{url}/healthz not green after {timeout_s:.0f}s")


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for name, child in children.items():
        try:
            child.wait(timeout=35)
        except subprocess.TimeoutExpired:
            print(f"{name} did not drain in time; killing it", file=sys.stderr)
            child.kill()


def main() -> int:
    started_at = time.monotonic()
    settings = get_settings()
    configure_logging(level=settings.log_level, service="run")
    children: dict[str, subprocess.Popen[bytes]] = {}
    state = None
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        state = stack.up(settings)
        migrate(settings.postgres_dsn)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        processes = dict(PROCESSES)
        if settings.inference_url:
            processes.pop("inference")  # an existing inference service is used as it is
        else:
            env["INFERENCE_URL"] = f"http://127.0.0.1:{settings.inference_port}"
        for name, cmd in processes.items():
            children[name] = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
        url = f"http://{settings.gateway_host}:{settings.gateway_port}"
        # Green means every dependency, the model included (loaded and warmed up).
        _wait_healthy(url, children, settings.stack_ready_timeout_s + 300)
        print(
            f"\n  Adaptive Chat is ready at {url}/  (ready in {time.monotonic() - started_at:.1f}s;"
            " Ctrl-C stops it)\n",
            flush=True,
        )
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    raise StackError(f"{name} exited with {child.returncode}")
            time.sleep(0.5)
        return 0
    except (StackError, MigrationError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(children)
        if state is not None and state.started:
            stopped = stack.down(settings, only=state.started)
            print(f"stopped: {', '.join([*children, *stopped])}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
