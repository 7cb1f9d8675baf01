"""`python -m infra.gateway [--internal [--only LogicalId]]`: the public gateway, the internal
function host, or the host of one function that runs in a process of its own (the train
function: `Metadata.LocalHost` in template.yaml)."""

from __future__ import annotations

import argparse
import os

import uvicorn

from infra.gateway.app import internal_app, public_app
from shared.platform.logs import configure_logging
from shared.platform.settings import Settings, get_settings
from shared.platform.template import load_template


def _yield_to_the_chat_path(settings: Settings) -> None:
    """A dedicated host does long CPU-bound work (training): it runs niced, and its threads
    are kept to FUNCTIONS_HOST_CPUS cores. The CPU affinity is what bounds XLA's CPU thread
    pool (sized from the cores a process may use when JAX starts its CPU client), so it is set
    before the function's module is imported."""
    os.nice(settings.functions_host_nice)
    cores = sorted(os.sched_getaffinity(0))
    if 0 < settings.functions_host_cpus < len(cores):
        # The last cores: the others (the inference service, the gateway) start on the first.
        os.sched_setaffinity(0, cores[-settings.functions_host_cpus :])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.gateway")
    parser.add_argument("--internal", action="store_true", help="serve queue/scheduled functions")
    parser.add_argument(
        "--only", metavar="LOGICAL_ID", help="with --internal: serve this one function, which"
        " has a host of its own (Metadata.LocalHost), on its FUNCTIONS_HOST_PORTS port",
    )  # fmt: skip
    args = parser.parse_args()
    if args.only and not args.internal:
        parser.error("--only needs --internal")
    settings = get_settings()
    port = settings.functions_internal_port if args.internal else settings.gateway_port
    service = "functions-internal" if args.internal else "gateway"
    if args.only:
        spec = load_template(settings.template_path, settings).functions.get(args.only)
        if spec is None or spec.local_host is None:
            parser.error(f"{args.only} is not a function with a Metadata.LocalHost")
        if spec.local_host not in settings.functions_host_ports:
            parser.error(f"FUNCTIONS_HOST_PORTS has no port for {spec.local_host!r}")
        port = settings.functions_host_ports[spec.local_host]
        service = f"functions-{spec.local_host}"
        _yield_to_the_chat_path(settings)
    configure_logging(level=settings.log_level, service=service)
    app = internal_app(settings, only=args.only) if args.internal else public_app(settings)
    host = "127.0.0.1" if args.internal else settings.gateway_host
    # uvicorn drains in-flight requests on SIGTERM before exiting (graceful shutdown).
    uvicorn.run(
        app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=30
    )


if __name__ == "__main__":
    main()
