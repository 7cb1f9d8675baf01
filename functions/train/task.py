"""`python -m functions.train.task`: one training job as a GPU container task.

In AWS an EventBridge Pipe reads TrainQueue and starts this in an ECS task with the message's
body in TRAIN_MESSAGE (infra/aws/inference.yaml). It does what the queue function does for one
record (`functions.train.main`): `job.run` trains, evaluates and publishes, and records every
outcome of its own (done, a retry handed back through the outbox, failed) in the job's row.
The exit code is non-zero only when even that could not be done (the database is down, say):
the stack then puts TRAIN_MESSAGE into TrainDeadLetterQueue, and the training sweep retries or
fails the job whose heartbeat stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from functions.train import job
from functions.train.main import TrainRequest
from functions.train.model import Model
from shared.platform.logs import configure_logging
from shared.platform.settings import get_settings
from shared.services import Services

log = logging.getLogger(__name__)
MESSAGE_VAR = "TRAIN_MESSAGE"


async def run_message(body: str, services: Services, model: Model) -> job.Outcome:
    request = TrainRequest.model_validate_json(body)
    return await job.run(request.job_id, services=services, model=model)


async def _main(body: str) -> int:
    services = Services.from_settings(get_settings())
    try:
        outcome = await run_message(body, services, Model())
    except Exception:
        log.exception("training task failed")
        return 1
    finally:
        await services.aclose()
    log.info("training task done", extra={"job_id": outcome.job_id, "status": outcome.status})
    return 0


def main() -> int:
    settings = get_settings()
    configure_logging(level=settings.log_level, service="train")
    body = os.environ.get(MESSAGE_VAR)
    if not body:
        print(f"train task: {MESSAGE_VAR} holds no message", file=sys.stderr)
        return 2
    return asyncio.run(_main(body))


if __name__ == "__main__":
    sys.exit(main())
