"""Applies `sql/NNN_*.sql` in order, once each, recording name and checksum; then re-runs the
idempotent seeds in `sql/seed/`. A recorded file whose checksum changed, or that disappeared,
stops the run before anything is applied: migrations are never edited, only added."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from shared.platform.settings import REPO_ROOT

log = logging.getLogger(__name__)

SQL_DIR = REPO_ROOT / "sql"
# Serialises concurrent runners (two deploys, parallel test sessions) on one database.
_LOCK_KEY = 0x5EED_0001


class MigrationError(RuntimeError):
    pass


@dataclass
class MigrationReport:
    applied: list[str] = field(default_factory=list)
    already_applied: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _migration_files(sql_dir: Path) -> list[Path]:
    return sorted(p for p in sql_dir.glob("*.sql") if p.name[:3].isdigit())


def migrate(dsn: str, *, sql_dir: Path = SQL_DIR) -> MigrationReport:
    report = MigrationReport()
    files = _migration_files(sql_dir)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name TEXT PRIMARY KEY, checksum TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            recorded: dict[str, str] = dict(
                conn.execute("SELECT name, checksum FROM schema_migrations").fetchall()
            )
            _verify(recorded, files)
            for path in files:
                if path.name in recorded:
                    report.already_applied.append(path.name)
                    continue
                log.info("applying migration %s", path.name)
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                        (path.name, _checksum(path)),
                    )
                report.applied.append(path.name)
            for seed in sorted((sql_dir / "seed").glob("*.sql")):
                with conn.transaction():
                    conn.execute(seed.read_text())
                report.seeds.append(seed.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return report


def _verify(recorded: dict[str, str], files: list[Path]) -> None:
    present = {p.name: p for p in files}
    for name, checksum in sorted(recorded.items()):
        if name not in present:
            raise MigrationError(f"migration {name} was applied but its file is gone")
        actual = _checksum(present[name])
        if actual != checksum:
            raise MigrationError(
                f"migration {name} changed after it was applied (recorded {checksum[:12]}, "
                f"file {actual[:12]}): add a new migration instead of editing an applied one"
            )
