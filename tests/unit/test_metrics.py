"""Request metrics of the gateway and the internal host (bounded labels, `/metrics` only for a
bearer of METRICS_TOKEN on the public listener), and the dispatcher's delivery outcomes."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
from prometheus_client import REGISTRY
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from infra.dispatcher import metrics as dispatcher_metrics
from infra.gateway.app import InternalFunctions, MountedRoute, PublicGateway
from infra.gateway.sockets import SocketGateway
from shared.platform.metrics import bearer_allowed
from shared.platform.runtime.routes import compile_path
from shared.platform.settings import Settings
from shared.platform.template import QueueSpec


async def thing(scope: Scope, receive: Receive, send: Send) -> None:
    status = 500 if scope["path"].endswith("/boom") else 200
    await JSONResponse({"ok": status == 200}, status_code=status)(scope, receive, send)


def gateway(token: str | None) -> httpx.AsyncClient:
    route = MountedRoute("GET", "/v1/things/{id}", compile_path("/v1/things/{id}"), "Things", thing)
    services = SimpleNamespace(settings=Settings(metrics_token=token))
    app = PublicGateway([route], SocketGateway({}), None, services)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_requests_are_counted_under_the_route_template_never_the_raw_path() -> None:
    before = sample("acs_requests_total", function="Things", route="/v1/things/{id}",
                    method="GET", status="200")  # fmt: skip
    errors_before = sample("acs_request_errors_total", function="Things", route="/v1/things/{id}")
    async with gateway("s3cret-token") as client:
        assert (await client.get("/v1/things/123")).status_code == 200
        assert (await client.get("/v1/things/boom")).status_code == 500
        assert (await client.get("/nowhere/at/all")).status_code == 404
        scraped = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert scraped.status_code == 200
    text = scraped.text
    assert 'route="/v1/things/{id}"' in text and "/v1/things/123" not in text
    assert "/nowhere" not in text and 'route="unmatched"' in text
    after = sample("acs_requests_total", function="Things", route="/v1/things/{id}",
                   method="GET", status="200")  # fmt: skip
    assert after == before + 1
    errors = sample("acs_request_errors_total", function="Things", route="/v1/things/{id}")
    assert errors == errors_before + 1


async def test_the_public_metrics_need_the_token() -> None:
    async with gateway("s3cret-token") as client:
        assert (await client.get("/metrics")).status_code == 404
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 404
    async with gateway(None) as client:  # no token configured: nobody scrapes the public side
        assert (
            await client.get("/metrics", headers={"Authorization": "Bearer "})
        ).status_code == 404
    assert bearer_allowed("Bearer abc", "abc") and not bearer_allowed("Basic abc", "abc")


async def test_the_internal_host_serves_metrics_and_counts_deliveries() -> None:
    app = InternalFunctions({"Mailer": thing})
    before = sample("acs_requests_total", function="Mailer", route="/events", method="POST",
                    status="200")  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as c:
        assert (await c.post("/functions/Mailer/events", json={})).status_code == 200
        scraped = await c.get("/metrics")
    assert scraped.status_code == 200 and "acs_requests_total" in scraped.text
    assert sample("acs_requests_total", function="Mailer", route="/events", method="POST",
                  status="200") == before + 1  # fmt: skip


def test_the_dispatcher_counts_outcomes_and_messages_on_their_last_receive() -> None:
    queue = QueueSpec("WorkQueue", "acs-work", 30, 3600, "WorkDLQ", 3)
    messages = [
        {"MessageId": "a", "Attributes": {"ApproximateReceiveCount": "1"}},
        {"MessageId": "b", "Attributes": {"ApproximateReceiveCount": "1"}},
        {"MessageId": "c", "Attributes": {"ApproximateReceiveCount": "3"}},
    ]

    def count(name: str, outcome: str) -> float:
        return sample(name, function="Worker", queue="acs-work", outcome=outcome)

    partial = count("acs_dispatcher_deliveries_total", "partial")
    done = count("acs_dispatcher_messages_total", "done")
    retried = count("acs_dispatcher_messages_total", "retried")
    dead = count("acs_dispatcher_messages_total", "dead_lettered")
    dispatcher_metrics.observe_delivery("Worker", queue, messages, {"b", "c"}, 0.2)
    assert count("acs_dispatcher_deliveries_total", "partial") == partial + 1
    assert count("acs_dispatcher_messages_total", "done") == done + 1
    assert count("acs_dispatcher_messages_total", "retried") == retried + 1
    assert count("acs_dispatcher_messages_total", "dead_lettered") == dead + 1


def test_the_oldest_message_age_comes_from_the_received_messages() -> None:
    queue = QueueSpec("WorkQueue", "acs-age", 30, 3600)
    now = 1_000_000.0
    received = [{"Attributes": {"SentTimestamp": str(int((now - s) * 1000))}} for s in (5, 90)]
    dispatcher_metrics.observe_receive(queue, received, now)
    assert sample("acs_queue_oldest_message_age_seconds", queue="acs-age") == 90
    dispatcher_metrics.observe_receive(queue, [], now)
    assert sample("acs_queue_oldest_message_age_seconds", queue="acs-age") == 0
