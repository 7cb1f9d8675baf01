"""`python -m infra.dispatcher`: runs until SIGTERM/SIGINT, then drains in-flight batches."""

from __future__ import annotations

import asyncio
import signal

from infra.dispatcher import metrics
from infra.dispatcher.app import Dispatcher
from shared.platform.aws import sqs_client
from shared.platform.logs import configure_logging
from shared.platform.settings import get_settings
from shared.platform.template import load_template


async def _main() -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, service="dispatcher")
    metrics.serve(settings.dispatcher_metrics_port)
    dispatcher = Dispatcher(
        settings, load_template(settings.template_path, settings), sqs_client(settings)
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.stopping.set)
    await dispatcher.run()


if __name__ == "__main__":
    asyncio.run(_main())
