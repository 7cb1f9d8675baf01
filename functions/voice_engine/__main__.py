"""`python -m functions.voice_engine`: the voice service on 127.0.0.1:VOICE_PORT.

The port opens at once and answers 503 on /healthz until the models are checked and loaded and
Piper has spoken its warm-up sentence. Hub access is off: every model is a local file."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

os.environ["HF_HUB_OFFLINE"] = "1"  # before faster-whisper imports huggingface_hub

from functions.voice_engine.app import create_app
from functions.voice_engine.runtime import Runtime
from shared.platform.logs import configure_logging
from shared.platform.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, service="voice")
    runtime = Runtime(settings)
    app = create_app(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        loading = asyncio.create_task(runtime.load())
        yield
        loading.cancel()
        await runtime.close()

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host="127.0.0.1", port=settings.voice_port, log_config=None,
                access_log=False, timeout_graceful_shutdown=30)  # fmt: skip


if __name__ == "__main__":
    main()
