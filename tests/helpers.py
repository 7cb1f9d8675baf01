"""Starting the project's own processes (gateway, internal host, dispatcher) for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import yaml

from shared.neural.config import LlamaConfig
from shared.neural.engine import DoneEvent, TokenEvent
from shared.platform.template import load_raw

REPO_ROOT = Path(__file__).resolve().parent.parent


FIXTURE_TEMPLATE = REPO_ROOT / "tests" / "fixtures" / "template.fixture.yaml"


def write_template_with_fixtures(template: Path, dest: Path) -> Path:
    """template.yaml plus the test-only functions and queues of tests/fixtures."""
    raw = load_raw(template)
    raw["Resources"].update(load_raw(FIXTURE_TEMPLATE)["Resources"])
    dest.write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


def random_checkpoint(config: LlamaConfig, seed: int) -> dict[str, np.ndarray]:
    """Checkpoint tensors of `config`'s shapes: norms at one, the rest N(0, 0.1)."""
    rng = np.random.default_rng(seed)
    return {
        name: (
            np.ones(shape, np.float32)
            if name.endswith("norm")
            else rng.normal(0, 0.1, shape).astype(np.float32)
        )
        for name, shape in config.expected_shapes().items()
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, *, timeout_s: float, interval_s: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"{what} not met within {timeout_s}s")


@contextlib.contextmanager
def project_process(
    args: list[str], *, env: dict[str, str], ready_url: str | None = None, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if ready_url:

            def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"{args} exited: {log_path.read_text()[-2000:]}")
                try:
                    httpx.get(ready_url, timeout=1)
                    return True
                except httpx.HTTPError:
                    return False

            wait_for(up, timeout_s=30, what=f"{args} listening")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


class Collector:
    """Gathers one engine request's events; `wait` returns its DoneEvent."""

    def __init__(self) -> None:
        self.tokens: list[TokenEvent] = []
        self.done: DoneEvent | None = None
        self.finished = threading.Event()

    def __call__(self, event) -> None:
        if isinstance(event, DoneEvent):
            self.done = event
            self.finished.set()
        else:
            self.tokens.append(event)

    def wait(self, timeout: float = 120) -> DoneEvent:
        assert self.finished.wait(timeout), "request did not finish"
        assert self.done is not None
        return self.done


@contextlib.contextmanager
def worker_processes(logs: Path) -> Iterator[Path]:
    """The internal function host and the dispatcher (queue polling + outbox relay), so queued
    work (mail, ingestion, an applied patch) really runs; their logs under `logs`."""
    port = free_port()
    env = {"FUNCTIONS_INTERNAL_PORT": str(port), "DISPATCHER_WAIT_S": "1",
           "OUTBOX_RELAY_INTERVAL_S": "0.3", "LOG_LEVEL": "INFO"}  # fmt: skip
    with (
        project_process(
            ["-m", "infra.gateway", "--internal"],
            env=env,
            ready_url=f"http://127.0.0.1:{port}",
            log_path=logs / "internal.log",
        ),
        project_process(["-m", "infra.dispatcher"], env=env, log_path=logs / "dispatcher.log"),
    ):
        yield logs
