"""The single box's backups (infra/singlebox/backup.py) against the stack's real Postgres and
S3: a custom-format dump of the session's database restores into a scratch database with the
same rows; dumps past their days are pruned by the time in their names, never the newest;
the object store's copies are pruned alike; the password is never on a command line."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import psycopg
import pytest

from infra.singlebox import backup
from infra.stack.postgres import LocalPostgres
from infra.stack.provision import delete_bucket
from shared.platform.aws import s3_client

pytestmark = pytest.mark.integration


@pytest.fixture
def local_postgres(migrated, settings):
    if "postgres" not in settings.local_services:
        pytest.skip("needs the embedded Postgres (a scratch database is created and dropped)")
    return LocalPostgres(settings)


@pytest.fixture
def scratch_db(local_postgres):
    name = f"acs_restore_{uuid.uuid4().hex[:8]}"
    local_postgres.ensure_database(name)
    yield local_postgres.dsn(name)
    local_postgres.drop_database(name)


def _count(dsn: str, email: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        total = conn.execute("SELECT count(*) FROM app_user").fetchone()
        marked = conn.execute("SELECT count(*) FROM app_user WHERE email = %s", (email,)).fetchone()
    assert total is not None and marked is not None
    return total[0], marked[0]


def test_a_dump_restores_into_a_scratch_database_with_the_same_rows(settings, scratch_db, tmp_path):
    email = f"backup-{uuid.uuid4().hex[:8]}@example.test"
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("INSERT INTO app_user (email) VALUES (%s)", (email,))
    path = backup.dump(settings.postgres_dsn, tmp_path / "backups")
    assert backup.stamp_of(path) is not None and path.stat().st_size > 0
    assert path.stat().st_mode & 0o077 == 0  # every user's data: the service user's only
    assert not list(path.parent.glob("*.partial"))
    before = _count(settings.postgres_dsn, email)
    assert before[1] == 1
    backup.restore(path, scratch_db)
    assert _count(scratch_db, email) == before
    # Over a database that has it all already (a rollback over the live one): --clean.
    with psycopg.connect(scratch_db) as conn:
        conn.execute("DELETE FROM app_user WHERE email = %s", (email,))
    backup.restore(path, scratch_db, clean=True)
    assert _count(scratch_db, email) == before


def test_a_failed_dump_leaves_no_backup_behind(settings, local_postgres, tmp_path):
    dsn = local_postgres.dsn(f"acs_absent_{uuid.uuid4().hex[:8]}")
    with pytest.raises(RuntimeError, match="pg_dump failed"):
        backup.dump(dsn, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_password_travels_in_the_environment_only():
    # (The dumps above authenticate with scram and --no-password: PGPASSWORD is what works.)
    conninfo, env = backup._split_password("postgresql://acs:pw%2Fx-9f3@db.internal:5433/app")
    assert "pw/x-9f3" not in conninfo and "password" not in conninfo
    assert env["PGPASSWORD"] == "pw/x-9f3" and "host=db.internal" in conninfo


def test_dumps_past_their_days_are_pruned_by_name_never_the_newest(settings, tmp_path):
    now = dt.datetime(2026, 3, 10, 2, 30, tzinfo=dt.UTC)
    directory = tmp_path / "backups"
    newest = backup.dump(settings.postgres_dsn, directory, now=now)
    names = {}
    for days in (3, 6.9, 7.1, 30):
        when = (now - dt.timedelta(days=days)).strftime(backup.STAMP)
        names[days] = directory / f"acs-{when}.dump"
        shutil.copy(newest, names[days])
    dead = directory / f"acs-{(now - dt.timedelta(days=9)).strftime(backup.STAMP)}.dump.partial"
    dead.write_bytes(b"half")
    unrelated = directory / "notes.txt"
    unrelated.write_text("kept")
    removed = backup.prune(directory, keep_days=7, keep=newest, now=now)
    assert set(removed) == {names[7.1], names[30], dead}
    assert {p.name for p in directory.iterdir()} == {
        newest.name,
        names[3].name,
        names[6.9].name,
        "notes.txt",
    }
    # Everything is "old" a year later, but the dump just written stays.
    later = now + dt.timedelta(days=365)
    backup.prune(directory, keep_days=7, keep=newest, now=later)
    assert {p.name for p in directory.iterdir()} == {newest.name, "notes.txt"}


def test_uploaded_copies_are_pruned_alike(settings, tmp_path):
    s3 = s3_client(settings)
    bucket = f"{settings.stack_name}-backup-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    try:
        store = backup.Store(s3, bucket)
        now = dt.datetime.now(dt.UTC)
        path = backup.dump(settings.postgres_dsn, tmp_path, now=now)
        key = store.upload(path)
        old = f"backups/acs-{(now - dt.timedelta(days=8)).strftime(backup.STAMP)}.dump"
        s3.put_object(Bucket=bucket, Key=old, Body=b"old dump")
        s3.put_object(Bucket=bucket, Key="users/x/elsewhere.txt", Body=b"not a backup")
        assert store.prune(keep_days=7, keep=key) == [old]
        left = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
        assert left == {key, "users/x/elsewhere.txt"}
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == path.read_bytes()
    finally:
        delete_bucket(s3, bucket)
