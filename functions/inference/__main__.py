"""`python -m functions.inference`: the inference service on INFERENCE_HOST:INFERENCE_PORT
(127.0.0.1 locally; the container listens on 0.0.0.0 for its load balancer).

The port opens at once and answers 503 on /healthz until the weights are loaded and a warm-up
generation has run. SIGTERM: uvicorn stops accepting and lets in-flight requests finish, then
the engine drains what is still queued."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from functions.inference.adapter_deletions import AdapterDeletions
from functions.inference.app import create_app
from functions.inference.cache_emf import AdapterCacheEmf
from functions.inference.runtime import Runtime
from shared.platform.logs import configure_logging
from shared.platform.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, service="inference")
    runtime = Runtime(settings)
    app = create_app(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=runtime.load, name="load", daemon=True).start()
        background = []
        if settings.inference_adapter_slots > 0:  # deleted adapters leave the cache at once
            deletions = AdapterDeletions(settings.postgres_dsn, lambda: runtime.adapters)
            background.append(asyncio.create_task(deletions.run()))
        if settings.metrics_emf:  # the ECS task: CloudWatch reads the cache's hit rate
            emf_lines = AdapterCacheEmf(runtime.registry)
            background.append(asyncio.create_task(emf_lines.run(settings.metrics_emf_interval_s)))
        yield
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if runtime.engine is not None:
            runtime.engine.stop(drain=True, timeout_s=30)
        await runtime.close()

    app.router.lifespan_context = lifespan
    uvicorn.run(
        app,
        host=settings.inference_host,
        port=settings.inference_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
