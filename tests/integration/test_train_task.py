"""`python -m functions.train.task` (the GPU training task in AWS): one TRAIN_MESSAGE, through
the same job claim as the queue function, against the local Postgres."""

from __future__ import annotations

import uuid

import pydantic
import pytest

from functions.train import task
from functions.train.model import Model


async def test_a_message_for_no_such_job_is_skipped(services) -> None:
    # The claim finds no queued job: nothing to train, and the task exits 0 (no DLQ).
    outcome = await task.run_message(f'{{"job_id": "{uuid.uuid4()}"}}', services, Model())
    assert outcome.status == "skipped"


async def test_a_malformed_message_is_refused(services) -> None:
    with pytest.raises(pydantic.ValidationError):
        await task.run_message('{"job_id": "not-a-uuid"}', services, Model())


def test_no_message_exits_with_a_usage_error(monkeypatch) -> None:
    monkeypatch.delenv(task.MESSAGE_VAR, raising=False)
    assert task.main() == 2
