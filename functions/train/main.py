"""Train queue function (DESIGN.md §4 flow 3): one message `{"job_id"}` per training job, sent
through the outbox when a user's feedback made a job due. The job row holds everything else;
`job.run` trains, evaluates and publishes (docs/model.md, "Training: the job").

A message is acknowledged once the job has an outcome in its row: done, handed back for a
retry (through the outbox, after a back-off: `jobs.fail`), or failed for good. Only when even
that could not be written (the database is down) does the message fail, to be delivered
again; the job's claim makes a second delivery harmless.

It runs in a process of its own (`Metadata.LocalHost: train`; in AWS a container image), which
imports JAX: the frozen model is loaded on the first job and kept for the next ones."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field

from functions.train import job
from functions.train.model import Model
from shared.platform.runtime.batch import SqsRecord, queue_function
from shared.platform.runtime.routes import RouteTable
from shared.services import Services

log = logging.getLogger(__name__)
UUID_PATTERN = r"^[0-9a-fA-F-]{36}$"


class TrainRequest(BaseModel):
    job_id: str = Field(pattern=UUID_PATTERN)


def routes(model: Model) -> RouteTable:
    async def handle(record: SqsRecord, *, services: Services) -> None:
        request = TrainRequest.model_validate(record.payload())
        outcome = await job.run(request.job_id, services=services, model=model)
        log.info("train message done", extra={"job_id": outcome.job_id, "status": outcome.status,
                                               "version": outcome.version,
                                               "promoted": outcome.promoted})  # fmt: skip

    return queue_function("train", handle, "SQS batch of training jobs ({job_id})")


# The process's model (loaded on the first job), as the inference service keeps its engine.
ROUTES = routes(Model())
