"""`python -m infra.gateway [--internal]`: the public gateway, or the internal function host."""

from __future__ import annotations

import argparse

import uvicorn

from infra.gateway.app import internal_app, public_app
from shared.platform.logs import configure_logging
from shared.platform.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.gateway")
    parser.add_argument("--internal", action="store_true", help="serve queue/scheduled functions")
    args = parser.parse_args()
    settings = get_settings()
    service = "functions-internal" if args.internal else "gateway"
    configure_logging(level=settings.log_level, service=service)
    app = internal_app(settings) if args.internal else public_app(settings)
    port = settings.functions_internal_port if args.internal else settings.gateway_port
    host = "127.0.0.1" if args.internal else settings.gateway_host
    # uvicorn drains in-flight requests on SIGTERM before exiting (graceful shutdown).
    uvicorn.run(
        app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=30
    )


if __name__ == "__main__":
    main()
