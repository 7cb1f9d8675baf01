"""The gateway mounts exactly what template.yaml declares, and nothing else."""

from __future__ import annotations

import httpx
import pytest

from infra.gateway.app import internal_app, public_app
from shared.platform.template import load_template

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def template(settings):
    return load_template(settings.template_path, settings)


@pytest.fixture
async def client(migrated, settings, template):
    transport = httpx.ASGITransport(app=public_app(settings, template=template))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def test_every_template_route_reaches_its_function(
    client, settings, template, oidc_provider
) -> None:
    """Called bare, each route answers from its function: 200, or the function's own refusal
    of a missing body (400) or missing token (401), never the gateway's 404. (The OAuth start
    route, called for the configured provider, answers with the provider's authorization URL;
    the provider runs for this test.)"""
    routes = [(e.method, e.path) for f in template.functions.values() for e in f.http]
    assert routes, "the template declares no HTTP routes"
    for method, path in routes:
        url = path.replace("{provider}", settings.oidc_provider_name)
        response = await client.request(method, url.replace("{", "x").replace("}", ""))
        if (method, path) == ("POST", "/v1/auth/oauth/{provider}/start"):
            assert response.status_code == 200, response.text
            started = response.json()["data"]["authorization_url"]
            assert started.startswith(oidc_provider.issuer + "/authorize?")
            continue
        assert response.status_code in (200, 400, 401), (method, path, response.text)
        body = response.json()
        assert "openapi" in body or body["status"] in ("ok", "error")
        assert response.headers["x-request-id"]


async def test_healthz_reports_every_dependency(client) -> None:
    body = (await client.get("/healthz")).json()
    assert body["status"] == "ok"
    assert set(body["data"]["checks"]) >= {"database", "redis", "object_store", "queue", "disk"}
    assert all(check["status"] == "up" for check in body["data"]["checks"].values())
    assert body["data"]["version"]


async def test_openapi_lists_public_routes_only(client, template) -> None:
    document = (await client.get("/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    declared = {e.path for f in template.functions.values() for e in f.http}
    assert set(document["paths"]) == declared
    assert "/events" not in document["paths"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/unknown"),
        ("GET", "/events"),
        ("POST", "/events"),
        ("POST", "/functions/OutboxRelayFunction/events"),
        ("GET", "/missing.js"),
        ("GET", "/../../etc/passwd"),
        ("GET", "/%2e%2e/%2e%2e/etc/passwd"),
    ],
)
async def test_unknown_routes_internal_paths_and_traversal_get_the_404_envelope(
    client, method, path
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 404, (path, response.text)
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == "not_found"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_wrong_method_on_a_known_path_is_405(client) -> None:
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_static_front_end_is_served(client) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert "<title>Adaptive Chat</title>" in response.text


async def test_internal_host_serves_queue_functions_only(migrated, settings, template) -> None:
    transport = httpx.ASGITransport(app=internal_app(settings, template=template))
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        relay = await client.post(
            "/functions/OutboxRelayFunction/events", json={"source": "aws.events"}
        )
        assert relay.status_code == 200 and relay.json()["data"]["sent"] >= 0
        assert (await client.post("/functions/HealthFunction/events", json={})).status_code == 404
        assert (await client.get("/healthz")).status_code == 404
