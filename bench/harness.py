"""What the stack benchmarks share: a throwaway stack name and database, processes started on
it (the inference service, a gateway), readiness waits, and clean-up of only what they started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra import stack
from infra.stack.postgres import LocalPostgres
from infra.stack.provision import delete_bucket
from shared.platform.aws import s3_client, sqs_client
from shared.platform.db.migrate import migrate
from shared.platform.settings import REPO_ROOT, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    # Inclusive: with few samples p99 stays within the data (the maximum) instead of beyond it.
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def start(
    module: str, env: dict[str, str], logs: Path, *, settings: Settings
) -> subprocess.Popen[bytes]:
    """`python -m module` on the bench's stack, its output to `<logs>/<module>.log`."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "STACK_NAME": settings.stack_name,
           "PG_DATABASE": settings.pg_database, "LOG_LEVEL": "WARNING", **env}  # fmt: skip
    with (logs / f"{module}.log").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module], cwd=REPO_ROOT, env=env, stdout=out, stderr=out
        )


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{log.stem} exited: {log.read_text()[-2000:]}")
        try:  # the inference service answers 503 until weights are loaded and shapes compiled
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{log.stem} not ready in {timeout_s:.0f}s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def clean(settings: Settings) -> None:
    """The throwaway database, and the queues and buckets `stack.up` provisioned for it."""
    LocalPostgres(settings).drop_database(settings.pg_database)
    sqs, s3 = sqs_client(settings), s3_client(settings)
    for url in sqs.list_queues(QueueNamePrefix=settings.stack_name).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
    for bucket in s3.list_buckets().get("Buckets", []):
        if bucket["Name"].startswith(settings.stack_name):
            delete_bucket(s3, bucket["Name"])


@dataclass(frozen=True)
class Served:
    base: str  # the gateway
    inference: str
    logs: Path
    settings: Settings
    voice_url: str | None = None


@contextlib.contextmanager
def served(
    stack_name: str, database: str, *, token: str, logs: Path | None = None,
    inference_env: dict[str, str] | None = None, gateway_env: dict[str, str] | None = None,
    gateway_module: str = "infra.gateway", voice: bool = False,
) -> Iterator[Served]:  # fmt: skip
    """The stack (started, or reused as it is), a throwaway database migrated on it, and an
    inference service and a gateway on free ports with `*_env` on top of their settings, ready;
    with `voice`, the voice service too; on the way out, only what this started is stopped and
    the throwaway data dropped."""
    settings = Settings(stack_name=stack_name, pg_database=database, log_level="WARNING")
    state = stack.up(settings)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate(settings.postgres_dsn)
        logs = logs or Path(tempfile.mkdtemp(prefix=f"{stack_name}-"))
        inference_port, gateway_port = free_port(), free_port()
        inference = f"http://127.0.0.1:{inference_port}"
        base = f"http://127.0.0.1:{gateway_port}"
        service = {"INFERENCE_PORT": str(inference_port), "INFERENCE_TOKEN": token}
        gateway = {"GATEWAY_PORT": str(gateway_port), "PUBLIC_BASE_URL": base,
                   "INFERENCE_URL": inference, "INFERENCE_TOKEN": token}  # fmt: skip
        procs.append(start("functions.inference", {**service, **(inference_env or {})}, logs,
                           settings=settings))  # fmt: skip
        voice_url = None
        if voice:
            voice_url = f"http://127.0.0.1:{free_port()}"
            gateway |= {"VOICE_URL": voice_url, "VOICE_TOKEN": token}
            procs.append(start("functions.voice_engine", {"VOICE_TOKEN": token,
                               "VOICE_PORT": voice_url.rsplit(":", 1)[1]}, logs,
                               settings=settings))  # fmt: skip
            wait_ready(voice_url, procs[-1], logs / "functions.voice_engine.log", 300)
        procs.append(start(gateway_module, {**gateway, **(gateway_env or {})}, logs,
                           settings=settings))  # fmt: skip
        # Weights load, then every prefill/decode shape compiles (minutes on a cold JAX cache);
        # the gateway's /healthz is green only once the service is.
        wait_ready(inference, procs[0], logs / "functions.inference.log", 900)
        wait_ready(base, procs[-1], logs / f"{gateway_module}.log", 60)
        yield Served(base, inference, logs, settings, voice_url)
    finally:
        for proc in reversed(procs):  # only what this bench started
            stop(proc)
        clean(settings)
        if state.started:
            stack.down(settings, only=state.started)


PASSWORD = "bench password, long enough"  # noqa: S105 - throwaway accounts, dropped after


class RefreshingBearer(httpx.Auth):
    """A bearer token refreshed once it expires, as a client would (a benchmark outlives an
    access token): on a 401, the first request to see it refreshes under a lock, and every
    request retries once with the new token (a refresh token used twice ends the session)."""

    requires_response_body = True

    def __init__(self, access: str, refresh: str) -> None:
        self.access, self.refresh = access, refresh
        self._lock = asyncio.Lock()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = self.access
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        await response.aread()  # what `requires_response_body` promises the caller
        if response.status_code != 401 or request.url.path.startswith("/v1/auth/"):
            return
        async with self._lock:
            if self.access == used:
                url = request.url.copy_with(path="/v1/auth/refresh", query=None)
                renewed = yield httpx.Request("POST", url, json={"refresh_token": self.refresh})
                await renewed.aread()
                if renewed.status_code != 200:
                    raise RuntimeError(f"refresh answered {renewed.status_code}: {renewed.text}")
                data = renewed.json()["data"]
                self.access, self.refresh = data["access_token"], data["refresh_token"]
        request.headers["Authorization"] = f"Bearer {self.access}"
        yield request


async def signed_up_clients(base: str, count: int, *, timeout_s: float) -> list[httpx.AsyncClient]:
    """`count` new accounts, each an HTTP client carrying its bearer token, refreshed when it
    expires (close them)."""
    clients = []
    for _ in range(count):
        http = httpx.AsyncClient(base_url=base, timeout=timeout_s)
        clients.append(http)
        email = f"bench-{uuid.uuid4().hex[:10]}@example.test"
        signed = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        if signed.status_code != 201:
            raise RuntimeError(f"signup answered {signed.status_code}: {signed.text[:300]}")
        data = signed.json()["data"]
        http.auth = RefreshingBearer(data["access_token"], data["refresh_token"])
    return clients
