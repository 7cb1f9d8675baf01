"""The local stack starts, is reused, and stops cleanly; a server given by URL is not started."""

from __future__ import annotations

import pytest

from infra import stack
from infra.stack.process import port_open
from tests.helpers import free_port

pytestmark = pytest.mark.integration


def test_stack_start_is_idempotent_and_stop_is_clean(local_stack, settings, tmp_path) -> None:
    scratch = settings.model_copy(
        update={
            "data_dir": tmp_path / "data",
            "pg_port": free_port(),
            "redis_port": free_port(),
            "sqs_port": free_port(),
            "mail_sink_port": free_port(),
            # Given by URL: this stack must use the session's S3 and never start its own.
            "s3_endpoint_url": settings.s3_endpoint,
        }
    )
    assert scratch.local_services == ["postgres", "valkey", "sqs", "mailsink"]
    try:
        first = stack.up(scratch)
        assert sorted(first.started) == ["mailsink", "postgres", "sqs", "valkey"]
        assert set(first.queue_urls) == set(
            stack.load_template(scratch.template_path, scratch).queues
        )
        assert not (tmp_path / "data" / "seaweedfs").exists()

        again = stack.up(scratch)
        assert again.started == []
        assert sorted(again.reused) == ["mailsink", "postgres", "sqs", "valkey"]
        assert all(stack.status(scratch).values())
    finally:
        stopped = stack.down(scratch)
    assert sorted(stopped) == ["mailsink", "postgres", "sqs", "valkey"]
    for port in (scratch.pg_port, scratch.redis_port, scratch.sqs_port, scratch.mail_sink_port):
        assert not port_open(port)
    assert stack.down(scratch) == []  # stopping a stopped stack is a no-op
