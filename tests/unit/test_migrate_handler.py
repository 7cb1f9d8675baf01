"""MigrateFunction's answers to CloudFormation (functions/migrate/handler.py): every request
gets exactly one PUT to its ResponseURL, in the custom-resource response format, here received
by a local HTTP server standing in for CloudFormation's pre-signed S3 URL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from functions.migrate import handler as migrate_handler
from shared.platform.db.migrate import MigrationReport


class _ResponseUrl:
    """Records each PUT's path, headers and JSON body."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/signed?X-Amz-Signature=abc"

    def __enter__(self) -> _ResponseUrl:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def response_url() -> Iterator[_ResponseUrl]:
    with _ResponseUrl() as url:
        yield url


def _event(url: str, request_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/chat/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "MigrationsResource",
        "ResourceType": "AWS::CloudFormation::CustomResource",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", "FunctionVersion": "3"},
        **extra,
    }


CONTEXT = SimpleNamespace(log_stream_name="2026/11/28/[$LATEST]abc")


def test_create_migrates_and_answers_success(response_url, monkeypatch) -> None:
    calls: list[str] = []

    def fake_migrate(dsn: str) -> MigrationReport:
        calls.append(dsn)
        return MigrationReport(applied=["024_x.sql", "025_y.sql"], already_applied=["001_a.sql"])

    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/chat")
    monkeypatch.setattr(migrate_handler, "migrate", fake_migrate)
    migrate_handler.handler(_event(response_url.url, "Create"), CONTEXT)

    assert calls == ["postgresql://u:p@db:5432/chat"]
    (put,) = response_url.received
    assert put["path"] == "/signed?X-Amz-Signature=abc"  # the pre-signed URL, untouched
    assert put["headers"].get("Content-Type", "") == ""  # the signature names no type
    body = put["body"]
    assert body["Status"] == "SUCCESS"
    assert body["Data"] == {"Applied": 2, "AlreadyApplied": 1}
    assert "024_x.sql" in body["Reason"]
    assert body["StackId"].endswith("stack/chat/guid")
    assert (body["RequestId"], body["LogicalResourceId"]) == ("req-1", "MigrationsResource")
    assert body["PhysicalResourceId"] == f"{body['StackId']}/migrations"


def test_update_keeps_the_physical_id(response_url, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/chat")
    monkeypatch.setattr(migrate_handler, "migrate", lambda dsn: MigrationReport())
    event = _event(response_url.url, "Update", PhysicalResourceId="earlier-id")
    migrate_handler.handler(event, CONTEXT)
    (put,) = response_url.received
    assert put["body"]["Status"] == "SUCCESS"
    # A new id would make CloudFormation delete the "old" resource after the update.
    assert put["body"]["PhysicalResourceId"] == "earlier-id"


def test_a_failed_migration_answers_failed_with_the_reason(response_url, monkeypatch) -> None:
    def broken(dsn: str) -> MigrationReport:
        raise RuntimeError("migration 024_x.sql changed after it was applied")

    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/chat")
    monkeypatch.setattr(migrate_handler, "migrate", broken)
    migrate_handler.handler(_event(response_url.url, "Create"), CONTEXT)
    (put,) = response_url.received
    assert put["body"]["Status"] == "FAILED"
    assert put["body"]["Reason"] == "RuntimeError: migration 024_x.sql changed after it was applied"


def test_no_database_configured_answers_failed(response_url, monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRETS_ARNS", raising=False)
    monkeypatch.delenv("SECRETS_FILE", raising=False)
    migrate_handler.handler(_event(response_url.url, "Create"), CONTEXT)
    (put,) = response_url.received
    assert put["body"]["Status"] == "FAILED"
    assert "no DATABASE_URL" in put["body"]["Reason"]


def test_delete_touches_nothing_and_answers_success(response_url, monkeypatch) -> None:
    def must_not_run(dsn: str) -> MigrationReport:
        raise AssertionError("Delete must not migrate")

    monkeypatch.setattr(migrate_handler, "migrate", must_not_run)
    migrate_handler.handler(_event(response_url.url, "Delete", PhysicalResourceId="p"), CONTEXT)
    (put,) = response_url.received
    assert put["body"]["Status"] == "SUCCESS"
    assert put["body"]["PhysicalResourceId"] == "p"


def test_an_unknown_request_type_answers_failed(response_url) -> None:
    migrate_handler.handler(_event(response_url.url, "Rollback"), CONTEXT)
    (put,) = response_url.received
    assert put["body"]["Status"] == "FAILED"
    assert "Rollback" in put["body"]["Reason"]


def test_a_long_reason_is_cut_to_what_cloudformation_shows(response_url, monkeypatch) -> None:
    def verbose(dsn: str) -> MigrationReport:
        raise ValueError("x" * 10_000)

    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/chat")
    monkeypatch.setattr(migrate_handler, "migrate", verbose)
    migrate_handler.handler(_event(response_url.url, "Create"), CONTEXT)
    (put,) = response_url.received
    assert len(put["body"]["Reason"]) == migrate_handler.MAX_REASON
