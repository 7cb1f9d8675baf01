"""The test inference service (SmolLM2 behind `python -m functions.inference`): how tests start
one. The session's shared one is the `service` fixture (tests/conftest.py), used by the
integration and the browser tests alike; a test that needs a service of its own (to kill it,
to drain it) starts one with `start_inference`."""

from __future__ import annotations

import httpx

from tests.helpers import free_port, project_process, wait_for

TOKEN = "test-inference-token"
SLOTS, QUEUE = 2, 2
# The shared service's adapter bank and host cache: small, so tests can fill and evict them.
ADAPTER_SLOTS, ADAPTER_CACHE_MB = 4, 8


def start_inference(tmp_path_factory, name: str, *, adapters: bool = False):
    """`adapters`: with a bank and a cache (slower to start: more shapes to compile), which
    resolve adapters in the session's database and bucket."""
    port = free_port()
    env = {
        "INFERENCE_ADAPTER_SLOTS": str(ADAPTER_SLOTS if adapters else 0),
        "INFERENCE_ADAPTER_CACHE_MB": str(ADAPTER_CACHE_MB),
        "INFERENCE_PORT": str(port),
        "INFERENCE_TOKEN": TOKEN,
        "INFERENCE_SLOTS": str(SLOTS),
        "INFERENCE_QUEUE_SIZE": str(QUEUE),
        "INFERENCE_MAX_SEQ_LEN": "512",
        "LOG_LEVEL": "INFO",
    }
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp(name) / "inference.log"
    return url, project_process(
        ["-m", "functions.inference"], env=env, ready_url=url + "/healthz", log_path=log
    )


def wait_inference_ready(url: str) -> None:
    def ready() -> bool:
        # While weights load and shapes compile, the loop can answer late on a busy machine:
        # a timed-out probe means "not yet", like a 503.
        try:
            return httpx.get(url + "/healthz", timeout=5).status_code == 200
        except httpx.TimeoutException:
            return False

    wait_for(
        ready,
        timeout_s=300,
        interval_s=0.5,
        what="inference ready",
    )
