"""The embedded local stack (DESIGN.md §2): real servers from PyPI wheels on 127.0.0.1.

`up()` starts what settings do not point elsewhere, reuses what is already running, waits
for readiness with a bound, and provisions the template's buckets and queues. `down()` stops
the servers this stack runs, and only those (by their pid files).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from infra.stack.postgres import LocalPostgres
from infra.stack.provision import provision_buckets, provision_queues
from infra.stack.servers import LocalMailSink, LocalSeaweedFS, LocalSqs, LocalValkey
from shared.platform.aws import s3_client, sqs_client
from shared.platform.settings import Settings
from shared.platform.template import load_template

log = logging.getLogger(__name__)

LocalServer = LocalPostgres | LocalValkey | LocalSeaweedFS | LocalSqs | LocalMailSink


def local_servers(settings: Settings) -> list[LocalServer]:
    wanted = set(settings.local_services)
    every: list[LocalServer] = [
        LocalPostgres(settings),
        LocalValkey(settings),
        LocalSeaweedFS(settings),
        LocalSqs(settings),
        LocalMailSink(settings),
    ]
    return [server for server in every if server.name in wanted]


@dataclass
class StackState:
    started: list[str]
    reused: list[str]
    queue_urls: dict[str, str]


def up(settings: Settings, *, provision: bool = True) -> StackState:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    started, reused = [], []
    for server in local_servers(settings):
        if server.running():
            reused.append(server.name)
        else:
            log.info("starting %s", server.name)
            server.start()
            started.append(server.name)
        if isinstance(server, LocalPostgres):
            server.ensure_database(settings.pg_database)
    urls: dict[str, str] = {}
    if provision:
        template = load_template(settings.template_path, settings)
        urls = provision_queues(sqs_client(settings), template)
        provision_buckets(
            s3_client(settings), template, allowed_origins=settings.cors_allow_origins
        )
    return StackState(started=started, reused=reused, queue_urls=urls)


def down(settings: Settings, *, only: list[str] | None = None) -> list[str]:
    stopped = []
    for server in reversed(local_servers(settings)):
        if only is not None and server.name not in only:
            continue
        if server.stop():
            stopped.append(server.name)
    return stopped


def status(settings: Settings) -> dict[str, bool]:
    return {server.name: server.running() for server in local_servers(settings)}
