"""/healthz against real dependencies: green while they are up, 503 naming the one that stops."""

from __future__ import annotations

import httpx
import pytest

from infra.stack.servers import LocalValkey
from tests.helpers import free_port, project_process, wait_for

pytestmark = pytest.mark.integration


def test_a_stopped_dependency_is_reported_down(local_stack, migrated, settings, tmp_path) -> None:
    # A Valkey of this test's own, so stopping it disturbs nothing else.
    redis_port = free_port()
    own_redis = LocalValkey(
        settings.model_copy(update={"data_dir": tmp_path, "redis_port": redis_port})
    )
    own_redis.start()
    gateway_port = free_port()
    url = f"http://127.0.0.1:{gateway_port}"
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GATEWAY_PORT": str(gateway_port),
        "DEPENDENCY_TIMEOUT_S": "1",
    }
    try:
        with project_process(
            ["-m", "infra.gateway"], env=env, ready_url=url, log_path=tmp_path / "gw.log"
        ):
            healthy = httpx.get(f"{url}/healthz", timeout=10)
            assert healthy.status_code == 200, healthy.text
            checks = healthy.json()["data"]["checks"]
            assert {name: c["status"] for name, c in checks.items()} == {
                "database": "up",
                "redis": "up",
                "object_store": "up",
                "queue": "up",
                "disk": "up",  # the data directory's disk (the stack's, on this host)
            }

            assert own_redis.stop()
            down = wait_for(
                lambda: (r := httpx.get(f"{url}/healthz", timeout=10)).status_code == 503 and r,
                timeout_s=15,
                what="healthz turning 503",
            )
            body = down.json()
            assert body["status"] == "error" and body["error"]["code"] == "unavailable"
            checks = body["error"]["details"]["checks"]
            assert checks["redis"]["status"] == "down" and checks["redis"]["error"]
            assert all(
                checks[name]["status"] == "up"
                for name in ("database", "object_store", "queue", "disk")
            )
            assert (
                body["error"]["details"]["git_commit"] is None
                or len(body["error"]["details"]["git_commit"]) == 40
            )
    finally:
        own_redis.stop()
