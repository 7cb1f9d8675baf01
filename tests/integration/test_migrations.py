"""The migration runner against a real Postgres 18 + pgvector."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import psycopg
import pytest

from infra.stack.postgres import LocalPostgres
from shared.platform.db.migrate import SQL_DIR, MigrationError, migrate


@pytest.fixture
def empty_database(local_stack, settings):
    if "postgres" not in settings.local_services:
        pytest.skip("needs the embedded Postgres to create scratch databases")
    server = LocalPostgres(settings)
    name = f"acs_mig_{secrets.token_hex(3)}"
    server.ensure_database(name)
    yield server.dsn(name)
    server.drop_database(name)


def _count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchone()[0]


def test_migrations_apply_on_an_empty_database_then_reapply_as_a_no_op(empty_database: str) -> None:
    first = migrate(empty_database)
    files = sorted(p.name for p in SQL_DIR.glob("[0-9]*.sql"))
    assert first.applied == files
    artifacts = _count(empty_database, "SELECT count(*) FROM artifact")
    versions = _count(empty_database, "SELECT count(*) FROM artifact_version")
    assert artifacts >= 3 and versions == artifacts

    second = migrate(empty_database)
    assert second.applied == []
    assert second.already_applied == files
    assert _count(empty_database, "SELECT count(*) FROM artifact") == artifacts
    assert _count(empty_database, "SELECT count(*) FROM artifact_version") == versions


def test_seeded_kinds_and_vector_indexes(empty_database: str) -> None:
    migrate(empty_database)
    with psycopg.connect(empty_database) as conn:
        kinds = {row[0] for row in conn.execute("SELECT schema->>'kind' FROM artifact")}
        assert {"workflow.chat", "policy.routing", "tool.spec"} <= kinds
        hnsw = {
            row[0]
            for row in conn.execute(
                "SELECT indexname FROM pg_indexes"
                " WHERE indexdef ILIKE '%USING hnsw%vector_cosine_ops%'"
            )
        }
        assert {
            "knowledge_chunk_embedding_idx",
            "semantic_cluster_centroid_idx",
            "preference_event_embedding_idx",
        } <= hnsw
        dims = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'knowledge_chunk'::regclass AND attname = 'embedding'"
        ).fetchone()[0]
        assert dims == "vector(384)"


def test_a_seed_never_overwrites_a_changed_artifact(empty_database: str) -> None:
    migrate(empty_database)
    with psycopg.connect(empty_database) as conn:
        conn.execute(
            "UPDATE artifact SET description = 'edited by ConfigOps', version = 2"
            " WHERE name = 'default_chat'"
        )
    migrate(empty_database)
    with psycopg.connect(empty_database) as conn:
        row = conn.execute(
            "SELECT description, version FROM artifact WHERE name = 'default_chat'"
        ).fetchone()
    assert row == ("edited by ConfigOps", 2)


def test_an_edited_migration_fails_fast_and_applies_nothing(
    empty_database: str, tmp_path: Path
) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    migrate(empty_database, sql_dir=sql_dir)
    edited = sql_dir / "002_conversations.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    (sql_dir / "999_new.sql").write_text("CREATE TABLE should_not_exist (id INT);")
    with pytest.raises(MigrationError, match=r"002_conversations\.sql changed"):
        migrate(empty_database, sql_dir=sql_dir)
    assert (
        _count(
            empty_database, "SELECT count(*) FROM pg_tables WHERE tablename = 'should_not_exist'"
        )
        == 0
    )


def test_a_failing_migration_leaves_nothing_half_written(
    empty_database: str, tmp_path: Path
) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    (sql_dir / "999_broken.sql").write_text(
        "CREATE TABLE half_written (id INT);\nSELECT * FROM no_such_table;"
    )
    with pytest.raises(psycopg.errors.UndefinedTable):
        migrate(empty_database, sql_dir=sql_dir)
    assert (
        _count(empty_database, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_written'")
        == 0
    )
    assert (
        _count(
            empty_database, "SELECT count(*) FROM schema_migrations WHERE name = '999_broken.sql'"
        )
        == 0
    )
