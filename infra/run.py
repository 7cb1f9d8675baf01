"""`make run`: the local stack, migrations, the inference and voice services, the gateway, the
internal function host, the hosts of the functions that run in a process of their own (the train
function: niced, kept to FUNCTIONS_HOST_CPUS cores, see infra/gateway/__main__.py) and the
queue dispatcher; prints the URL when /healthz is green. Everything is
supervised (infra/supervisor.py): a process or stack server that dies is restarted with
back-off and logged; only Ctrl-C (or SIGTERM) stops the stack, and it stops what this run
started (a stack that was already running is left running, and is not supervised)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import httpx

from infra import stack
from infra.stack.postgres import LocalPostgres
from infra.stack.process import StackError
from infra.stack.provision import provision_buckets, provision_queues
from infra.supervisor import ChildProcess, Policy, ServerUnit, Supervisor
from shared.platform.aws import s3_client, sqs_client
from shared.platform.db.migrate import MigrationError, migrate
from shared.platform.logs import configure_logging
from shared.platform.settings import REPO_ROOT, Settings, get_settings
from shared.platform.template import load_template

PROCESSES = {
    "inference": [sys.executable, "-m", "functions.inference"],
    "voice": [sys.executable, "-m", "functions.voice_engine"],
    "gateway": [sys.executable, "-m", "infra.gateway"],
    "functions-internal": [sys.executable, "-m", "infra.gateway", "--internal"],
    "dispatcher": [sys.executable, "-m", "infra.dispatcher"],
}


def dedicated_hosts(settings: Settings) -> dict[str, list[str]]:
    """A process per function with a `Metadata.LocalHost` of its own (the train function)."""
    template = load_template(settings.template_path, settings)
    return {
        f"functions-{spec.local_host}": [
            sys.executable, "-m", "infra.gateway", "--internal", "--only", spec.logical_id,
        ]
        for spec in template.functions.values()
        if spec.local_host is not None
    }  # fmt: skip


def _after_start(settings: Settings, name: str) -> Callable[[], None] | None:
    """What a restarted server needs again: moto lost its queues (the dispatcher then re-drives
    the work whose messages were lost); the others keep their data on disk."""
    if name == "sqs":

        def queues() -> None:
            provision_queues(sqs_client(settings), load_template(settings.template_path, settings))

        return queues
    if name == "seaweedfs":
        return lambda: provision_buckets(
            s3_client(settings),
            load_template(settings.template_path, settings),
            allowed_origins=settings.cors_allow_origins,
        )
    if name == "postgres":
        return lambda: LocalPostgres(settings).ensure_database(settings.pg_database)
    return None


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    started_at = time.monotonic()
    settings = get_settings()
    configure_logging(level=settings.log_level, service="run")
    supervisor = Supervisor(
        Policy(
            base_s=settings.supervise_backoff_base_s,
            cap_s=settings.supervise_backoff_max_s,
            stable_s=settings.supervise_stable_s,
        )
    )
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
    except (StackError, MigrationError) as exc:
        print(f"run: {exc}", file=sys.stderr)
        if state is not None and state.started:
            stack.down(settings, only=state.started)
        return 1
    try:
        # Only the servers this run started are ours to bring back.
        for server in stack.local_servers(settings):
            if server.name in state.started:
                unit = ServerUnit(
                    server,
                    after_start=_after_start(settings, server.name),
                    check_s=settings.supervise_check_s,
                )
                supervisor.add(unit, started=True)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        processes = {**PROCESSES, **dedicated_hosts(settings)}
        if settings.inference_url:
            processes.pop("inference")  # an existing inference service is used as it is
        else:
            env["INFERENCE_URL"] = f"http://127.0.0.1:{settings.inference_port}"
        if settings.voice_url:
            processes.pop("voice")  # likewise an existing voice service
        else:
            env["VOICE_URL"] = settings.voice_service_url
        for name, cmd in processes.items():
            supervisor.add(ChildProcess(name, cmd, env=env, cwd=REPO_ROOT))
        url = f"http://{settings.gateway_host}:{settings.gateway_port}"
        # Green means every dependency, the model included (loaded and warmed up).
        ready_by = time.monotonic() + settings.stack_ready_timeout_s + 300
        announced = warned = False
        last_check = 0.0
        while not stopping:
            supervisor.tick()
            now = time.monotonic()
            if not announced and now - last_check >= 1.0:
                last_check = now
                if _healthy(url):
                    announced = True
                    print(
                        f"\n  Adaptive Chat is ready at {url}/  (ready in"
                        f" {now - started_at:.1f}s; Ctrl-C stops it)\n",
                        flush=True,
                    )
                elif now > ready_by and not warned:
                    warned = True
                    print(
                        f"run: {url}/healthz not green after {ready_by - started_at:.0f}s;"
                        " still supervising (see the logs; Ctrl-C stops)",
                        file=sys.stderr,
                    )
            time.sleep(0.5)
        return 0
    finally:
        children = supervisor.stop()
        stopped = stack.down(settings, only=state.started) if state.started else []
        print(f"stopped: {', '.join([*children, *stopped])}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
