"""`python -m infra.singlebox.backup dump|restore|list`: the single box's database backups
(docs/single-box.md; the nightly `acs-backup.timer` runs `dump`).

`dump` writes `pg_dump --format=custom` of DATABASE_URL (or the embedded Postgres) to
`<dir>/acs-<UTC time>.dump`: first under a `.partial` name, renamed once pg_dump succeeded, so
a failed or interrupted dump never passes for a backup. Then the dumps older than `--keep-days`
are pruned, by the time in their names (a copy that touched the file's mtime does not make
it young), never the one just written. `--upload` also puts it in the object store under
`backups/` (pruned by the same rule), so a lost disk does not take the backups with it.

`restore FILE --dsn URL` runs pg_restore into a database (an empty one, or `--clean`).

The password never appears on a command line (other users can read those in /proc): it
goes to pg_dump and pg_restore through PGPASSWORD in their environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.platform.settings import Settings, get_settings

log = logging.getLogger("backup")

PREFIX = "acs-"
SUFFIX = ".dump"
STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(rf"^{PREFIX}(\d{{8}}T\d{{6}}Z){re.escape(SUFFIX)}$")
OBJECT_PREFIX = "backups/"


def pg_tool(name: str) -> str:
    """pg_dump/pg_restore: the embedded Postgres's own (the same major version as its server)
    when installed, else the system's (PG_BIN_DIR overrides both)."""
    override = os.environ.get("PG_BIN_DIR")
    if override:
        return str(Path(override) / name)
    try:
        from infra.stack.postgres import POSTGRES_BIN_PATH

        embedded = POSTGRES_BIN_PATH / name
        if embedded.exists():
            return str(embedded)
    except Exception:  # noqa: S110 - no embedded Postgres: the system's tools below
        pass
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the PostgreSQL client or set PG_BIN_DIR")
    return found


def _split_password(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and the environment that carries it."""
    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    env = {**os.environ}
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def stamp_of(path: Path) -> dt.datetime | None:
    match = _NAME.match(path.name)
    if match is None:
        return None
    return dt.datetime.strptime(match.group(1), STAMP).replace(tzinfo=dt.UTC)


def dump(dsn: str, directory: Path, *, now: dt.datetime | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    when = (now or dt.datetime.now(dt.UTC)).strftime(STAMP)
    final = directory / f"{PREFIX}{when}{SUFFIX}"
    partial = final.with_name(final.name + ".partial")
    conninfo, env = _split_password(dsn)
    cmd = [pg_tool("pg_dump"), "--format=custom", "--no-password", f"--file={partial}", conninfo]
    old_umask = os.umask(0o077)  # the dump holds every user's data
    try:
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    finally:
        os.umask(old_umask)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"pg_dump failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    partial.rename(final)
    return final


def prune(directory: Path, *, keep_days: float, keep: Path | None = None,
          now: dt.datetime | None = None) -> list[Path]:  # fmt: skip
    """Deletes the dumps older than `keep_days` (by their names' time), and leftover
    `.partial` files of dumps that died; never `keep`. Returns what went."""
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
    removed = []
    for path in sorted(directory.glob(f"{PREFIX}*")):
        if path == keep:
            continue
        if path.name.endswith(".partial"):
            stem = path.with_name(path.name.removesuffix(".partial"))
            if (when := stamp_of(stem)) is not None and when < cutoff:
                path.unlink()
                removed.append(path)
            continue
        when = stamp_of(path)
        if when is not None and when < cutoff:
            path.unlink()
            removed.append(path)
    return removed


def restore(path: Path, dsn: str, *, clean: bool = False) -> None:
    conninfo, env = _split_password(dsn)
    cmd = [pg_tool("pg_restore"), "--no-owner", "--no-password", "--exit-on-error",
           f"--dbname={conninfo}", *(["--clean", "--if-exists"] if clean else []),
           str(path)]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"pg_restore failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
        )


@dataclass
class Store:
    """The object store's copy of the backups (`backups/` in the data bucket)."""

    s3: Any
    bucket: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        from shared.platform.aws import s3_client
        from shared.platform.template import load_template

        template = load_template(settings.template_path, settings)
        return cls(s3_client(settings), template.buckets["DataBucket"].name)

    def upload(self, path: Path) -> str:
        key = OBJECT_PREFIX + path.name
        self.s3.upload_file(str(path), self.bucket, key)
        return key

    def prune(self, *, keep_days: float, keep: str, now: dt.datetime | None = None) -> list[str]:
        cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days)
        old = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=OBJECT_PREFIX
        ):
            for item in page.get("Contents", []):
                when = stamp_of(Path(item["Key"]))
                if item["Key"] != keep and when is not None and when < cutoff:
                    old.append(item["Key"])
        for start in range(0, len(old), 1000):
            chunk = [{"Key": key} for key in old[start : start + 1000]]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
        return old


def run_dump(
    settings: Settings, directory: Path, *, keep_days: float, upload: bool
) -> dict[str, Any]:
    path = dump(settings.postgres_dsn, directory)
    report: dict[str, Any] = {"dump": str(path), "bytes": path.stat().st_size}
    report["pruned"] = [p.name for p in prune(directory, keep_days=keep_days, keep=path)]
    if upload:
        store = Store.from_settings(settings)
        key = store.upload(path)
        report["uploaded"] = key
        report["pruned_uploads"] = store.prune(keep_days=keep_days, keep=key)
    return report


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m infra.singlebox.backup")
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("dump", help="pg_dump, then prune past --keep-days")
    made.add_argument("--dir", type=Path, default=settings.data_dir / "backups")
    made.add_argument("--keep-days", type=float, default=7.0)
    made.add_argument("--upload", action="store_true", help="also to the store's backups/")
    listed = commands.add_parser("list", help="the dumps in --dir, newest first")
    listed.add_argument("--dir", type=Path, default=settings.data_dir / "backups")
    back = commands.add_parser("restore", help="pg_restore a dump into a database")
    back.add_argument("file", type=Path)
    back.add_argument("--dsn", default=None, help="default: DATABASE_URL (the live database)")
    back.add_argument("--clean", action="store_true", help="drop what the dump recreates first")
    args = parser.parse_args(argv)
    try:
        if args.command == "dump":
            report = run_dump(settings, args.dir, keep_days=args.keep_days, upload=args.upload)
            print(json.dumps(report))
        elif args.command == "list":
            dumps = sorted((p for p in args.dir.glob(f"{PREFIX}*{SUFFIX}") if stamp_of(p)),
                           reverse=True)  # fmt: skip
            print("\n".join(str(p) for p in dumps))
        else:
            restore(args.file, args.dsn or settings.postgres_dsn, clean=args.clean)
            print(json.dumps({"restored": str(args.file)}))
    except RuntimeError as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
