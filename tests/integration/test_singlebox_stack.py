"""The single box's data-services unit (infra/singlebox/stack_service.py) as systemd runs it:
a process of its own that starts real servers on ports of this test, provisions the queues,
says READY=1 on $NOTIFY_SOCKET, restarts a server killed under it, and stops what it started
on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import psycopg
import pytest
import redis

from infra.stack.process import port_open
from shared.platform.settings import REPO_ROOT
from shared.platform.template import load_template
from tests.helpers import free_port

pytestmark = pytest.mark.integration


def _eventually(check, *, within_s: float = 90.0) -> bool:
    """A liveness wait, not a timing assertion: True as soon as `check` passes."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: S110 - not up yet
            pass
        time.sleep(0.5)
    return False


def test_the_stack_unit_is_ready_restarts_a_dead_server_and_stops_on_sigterm(local_stack, settings):
    # Short paths: a Unix socket's path is limited to about 100 bytes.
    root = Path(tempfile.mkdtemp(prefix="acs-sb-", dir="/tmp"))
    root.chmod(0o755)  # the embedded Postgres may run as its own user
    ports = {"PG_PORT": free_port(), "REDIS_PORT": free_port(), "SQS_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "DATA_DIR": str(root / "data"),
           "NOTIFY_SOCKET": str(root / "notify.sock"), "LOG_LEVEL": "WARNING"}  # fmt: skip
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(root / "notify.sock"))
        notify.settimeout(180)
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.singlebox.stack_service", "--services",
             "postgres,valkey,sqs"], env=env, cwd=REPO_ROOT,
        )  # fmt: skip
        try:
            assert notify.recv(200).decode().startswith("READY=1")
            dsn = (f"postgresql://postgres:{settings.pg_password.get_secret_value()}"
                   f"@127.0.0.1:{ports['PG_PORT']}/{settings.pg_database}")  # fmt: skip
            with psycopg.connect(dsn) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            valkey = redis.Redis(port=ports["REDIS_PORT"], socket_timeout=1)
            assert valkey.ping()
            sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{ports['SQS_PORT']}",
                               region_name="us-east-1", aws_access_key_id="local",
                               aws_secret_access_key="local")  # fmt: skip
            template = load_template(settings.template_path, settings)
            assert len(sqs.list_queues().get("QueueUrls", [])) == len(template.queues)

            # A server killed under the unit comes back (and so does the SQS server's queues).
            pidfile = root / "data" / "valkey" / "valkey.pid"
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
            assert _eventually(lambda: not port_open(ports["REDIS_PORT"]), within_s=10)
            assert _eventually(valkey.ping)

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 0
            assert notify.recv(200) == b"STOPPING=1"
            assert not any(port_open(port) for port in ports.values())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            shutil.rmtree(root, ignore_errors=True)
