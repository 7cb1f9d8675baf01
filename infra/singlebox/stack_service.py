"""`python -m infra.singlebox.stack_service [--services postgres,valkey,...]`: the embedded data
services of a single box as one systemd unit (docs/single-box.md).

The same servers `make run` starts (infra/stack: Postgres with pgvector, Valkey, SeaweedFS's
S3, the SQS server), started here whatever ENV says: on a single box in production, ENV=prod
with DATABASE_URL, REDIS_URL, S3_ENDPOINT_URL and SQS_ENDPOINT_URL pointing at them on
127.0.0.1 (settings never start a server for `prod` themselves). The template's buckets and
queues are provisioned, then systemd is told the unit is ready (Type=notify), so the units
that need the data start after it. The servers are then supervised as `make run` does
(infra/supervisor.py: a dead one is restarted with back-off, its queues provisioned again);
SIGTERM stops the servers this process started.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time

from infra.run import _after_start
from infra.stack import LocalServer
from infra.stack.postgres import LocalPostgres
from infra.stack.process import StackError
from infra.stack.provision import provision_buckets, provision_queues
from infra.stack.servers import LocalSeaweedFS, LocalSqs, LocalValkey
from infra.supervisor import Policy, ServerUnit, Supervisor
from shared.platform.aws import s3_client, sqs_client
from shared.platform.logs import configure_logging
from shared.platform.settings import Settings, get_settings
from shared.platform.template import load_template

SERVERS: dict[str, type[LocalServer]] = {
    "postgres": LocalPostgres,
    "valkey": LocalValkey,
    "seaweedfs": LocalSeaweedFS,
    "sqs": LocalSqs,
}
DEFAULT_SERVICES = tuple(SERVERS)


def notify(state: str) -> bool:
    """sd_notify(3) without a library: one datagram to $NOTIFY_SOCKET (absent: not under
    systemd, nothing to tell)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True


def start(settings: Settings, names: list[str]) -> tuple[list[LocalServer], list[str]]:
    """Starts what is not running yet; returns the servers and the names this call started."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    servers = [SERVERS[name](settings) for name in names]
    started = []
    for server in servers:
        if not server.running():
            server.start()
            started.append(server.name)
        if isinstance(server, LocalPostgres):
            server.ensure_database(settings.pg_database)
    template = load_template(settings.template_path, settings)
    if "sqs" in names:
        provision_queues(sqs_client(settings), template)
    if "seaweedfs" in names:
        provision_buckets(
            s3_client(settings), template, allowed_origins=settings.cors_allow_origins
        )
    return servers, started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.singlebox.stack_service")
    parser.add_argument(
        "--services", default=",".join(DEFAULT_SERVICES),
        help=f"comma-separated, of {', '.join(SERVERS)}",
    )  # fmt: skip
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.services.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        parser.error(f"unknown services: {', '.join(unknown)}")
    settings = get_settings()
    configure_logging(level=settings.log_level, service="stack")
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        servers, started = start(settings, names)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    supervisor = Supervisor(Policy(base_s=settings.supervise_backoff_base_s,
                                   cap_s=settings.supervise_backoff_max_s,
                                   stable_s=settings.supervise_stable_s))  # fmt: skip
    for server in servers:
        unit = ServerUnit(server, after_start=_after_start(settings, server.name),
                          check_s=settings.supervise_check_s)  # fmt: skip
        supervisor.add(unit, started=True)
    notify(f"READY=1\nSTATUS=serving {', '.join(names)}")
    try:
        while not stopping:
            supervisor.tick()
            time.sleep(0.5)
    finally:
        notify("STOPPING=1")
        # Only what this process started (or restarted): a server that was already up when it
        # began belongs to someone else.
        for server in reversed(servers):
            if server.name in started or supervisor.restarts(server.name):
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
