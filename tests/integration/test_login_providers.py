"""`GET /v1/auth/providers` through the gateway: the ways to log in a login page may offer
(password always; the OIDC provider, by name and label, only when configured; never a secret
or the provider's internals), cacheable a while. And the OIDC callback as a browser meets it:
a navigation lands in the app with the outcome in the fragment (`#login=oidc`, or
`/#login_error=<code>`), while API clients keep the 303 and the error envelope."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from shared.services import Services
from tests.integration.conftest import gateway_client

pytestmark = pytest.mark.integration

PROVIDERS, START = "/v1/auth/providers", "/v1/auth/oauth/oidc/start"
NAVIGATION = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}


async def _providers(api: httpx.AsyncClient) -> tuple[list[dict], httpx.Response]:
    response = await api.get(PROVIDERS)  # no credentials at all
    assert response.status_code == 200, response.text
    return response.json()["data"]["providers"], response


async def test_a_configured_provider_is_offered_by_name_and_label(api, settings) -> None:
    providers, response = await _providers(api)
    assert providers == [
        {"kind": "password", "name": "password", "label": "Password"},
        {"kind": "oidc", "name": settings.oidc_provider_name, "label": "Oidc"},
    ]
    assert response.headers["cache-control"] == "public, max-age=300"
    # What a button needs and nothing more: no issuer, client or secret.
    secret = settings.oidc_client_secret.get_secret_value()
    for hidden in (secret, settings.oidc_client_id, settings.oidc_issuer, "127.0.0.1"):
        assert hidden not in response.text


async def test_the_label_setting_names_the_button(settings) -> None:
    labelled = Services.from_settings(
        settings.model_copy(update={"oidc_provider_label": "Acme ID"})
    )
    try:
        async with gateway_client(settings, labelled) as api:
            providers, _ = await _providers(api)
    finally:
        await labelled.aclose()
    assert providers[1] == {"kind": "oidc", "name": "oidc", "label": "Acme ID"}


async def test_without_oidc_only_the_password_is_offered(settings) -> None:
    plain = Services.from_settings(
        settings.model_copy(update={"oidc_issuer": None, "oidc_client_id": None})
    )
    try:
        async with gateway_client(settings, plain) as api:
            providers, _ = await _providers(api)
            started = await api.post(START, json={})
    finally:
        await plain.aclose()
    assert providers == [{"kind": "password", "name": "password", "label": "Password"}]
    assert started.status_code == 404  # and the start route agrees


async def _begin(api, oidc_provider, redirect_to: str = "/settings") -> tuple[str, str]:
    oidc_provider.identity = {
        "sub": f"sub-{uuid.uuid4().hex[:12]}",
        "email": f"oidc-{uuid.uuid4().hex[:10]}@example.test",
        "email_verified": True,
    }
    start = await api.post(START, json={"redirect_to": redirect_to})
    assert start.status_code == 200, start.text
    cookie = start.headers["set-cookie"].split(";", 1)[0]
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(start.json()["data"]["authorization_url"])
    location = urlsplit(consent.headers["location"])
    return f"{location.path}?{location.query}", cookie


async def test_a_browser_lands_in_the_app_signed_in(api, oidc_provider) -> None:
    callback, cookie = await _begin(api, oidc_provider)
    done = await api.get(callback, headers={**NAVIGATION, "Cookie": cookie})
    assert done.status_code == 303
    assert done.headers["location"] == "/settings#login=oidc"
    access = next(
        c.split(";", 1)[0]
        for c in done.headers.get_list("set-cookie")
        if c.startswith("acs_access=")
    )
    assert (await api.get("/v1/me", headers={"Cookie": access})).status_code == 200


async def test_a_browser_sees_why_a_login_failed(api, oidc_provider) -> None:
    # The provider refused (the user said no): its error comes back instead of a code.
    refused = await api.get(
        "/v1/auth/oauth/oidc/callback",
        params={"state": "s" * 32, "error": "access_denied"},
        headers=NAVIGATION,
    )
    assert refused.status_code == 303
    assert refused.headers["location"] == "/#login_error=denied"
    # A callback without the browser's state cookie (login CSRF): refused, said briefly.
    callback, _ = await _begin(api, oidc_provider)
    stranger = await api.get(callback, headers={"Accept": "text/html"})
    assert stranger.status_code == 303
    assert stranger.headers["location"] == "/#login_error=unauthorized"
    assert not any(c.startswith("acs_access=") for c in stranger.headers.get_list("set-cookie"))
    # An API client still gets the envelope.
    as_api = await api.get(
        "/v1/auth/oauth/oidc/callback", params={"state": "s" * 32, "error": "access_denied"}
    )
    assert as_api.status_code == 401 and as_api.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/x\x7f"])
async def test_a_return_path_with_control_characters_is_refused(api, oidc_provider, target) -> None:
    response = await api.post(START, json={"redirect_to": target})
    assert response.status_code == 400, target
