"""MigrateFunction against the local Postgres: a fresh database migrated from nothing by the
custom-resource handler, then an Update that finds everything applied and changes nothing,
each answered to a local stand-in for CloudFormation's ResponseURL."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from functions.migrate import handler as migrate_handler
from shared.platform.db.migrate import SQL_DIR
from tests.unit.test_migrate_handler import CONTEXT, _event, _ResponseUrl


@pytest.fixture
def fresh_database(migrated: str):
    """An empty database on the local server (dropped afterwards); `migrated` only makes sure
    the server is up."""
    name = f"migrate_fn_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(migrated)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _migrations() -> list[str]:
    return sorted(p.name for p in SQL_DIR.glob("*.sql") if p.name[:3].isdigit())


def test_create_then_update_migrates_once(fresh_database: str, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database)
    with _ResponseUrl() as url:
        migrate_handler.handler(_event(url.url, "Create"), CONTEXT)
        created = url.received[-1]["body"]
        migrate_handler.handler(_event(url.url, "Update", PhysicalResourceId="p"), CONTEXT)
        updated = url.received[-1]["body"]

    expected = _migrations()
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["Data"] == {"Applied": len(expected), "AlreadyApplied": 0}
    assert updated["Status"] == "SUCCESS", updated["Reason"]
    assert updated["Data"] == {"Applied": 0, "AlreadyApplied": len(expected)}
    with psycopg.connect(fresh_database) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        vector = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert names == expected
    assert vector is not None  # pgvector, as RDS offers it


def test_a_database_that_refuses_answers_failed(fresh_database: str, monkeypatch) -> None:
    wrong = urlunsplit(urlsplit(fresh_database)._replace(path="/no_such_database_here"))
    monkeypatch.setenv("DATABASE_URL", wrong)
    with _ResponseUrl() as url:
        migrate_handler.handler(_event(url.url, "Create"), CONTEXT)
    body = url.received[-1]["body"]
    assert body["Status"] == "FAILED"
    assert "no_such_database_here" in body["Reason"]
