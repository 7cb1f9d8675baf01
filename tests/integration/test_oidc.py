"""OIDC login through the gateway against a real (fake) provider over HTTP, at SPEC §13.2's
paths (`POST /v1/auth/oauth/{provider}/start`, `GET /v1/auth/oauth/{provider}/callback`): code flow
with PKCE, state bound to the browser, nonce and ID-token signature checked, accounts linked
safely; and the earlier callback path a provider may have registered."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from shared.services import Services
from tests.integration.authkit import new_email, sign_up
from tests.integration.conftest import gateway_client

pytestmark = pytest.mark.integration


@pytest.fixture
def provider(oidc_provider):
    return oidc_provider


def _identity(email: str, *, verified: bool = True) -> dict:
    return {"sub": f"sub-{uuid.uuid4().hex[:12]}", "email": email, "email_verified": verified}


START, CALLBACK = "/v1/auth/oauth/oidc/start", "/v1/auth/oauth/oidc/callback"


async def _begin(api, redirect_to: str = "/chat") -> tuple[str, str]:
    """Starts a login like the app: (the callback query the provider sends back, state cookie)."""
    start = await api.post(START, json={"redirect_to": redirect_to})
    assert start.status_code == 200, start.text
    assert "path=/v1/auth" in start.headers["set-cookie"].lower()
    state_cookie = start.headers["set-cookie"].split(";", 1)[0]
    async with httpx.AsyncClient() as browser:  # the provider is a real server
        consent = await browser.get(start.json()["data"]["authorization_url"])
    assert consent.status_code == 302
    location = urlsplit(consent.headers["location"])
    assert location.path == CALLBACK  # the redirect URI the login named
    return location.query, state_cookie


async def _callback(api, query: str, cookie: str | None, path: str = CALLBACK) -> httpx.Response:
    headers = {"Cookie": cookie} if cookie else {}
    return await api.get(f"{path}?{query}", headers=headers)


async def test_oidc_login_creates_then_finds_the_account(api, provider) -> None:
    email = new_email()
    provider.identity = _identity(email)
    query, cookie = await _begin(api)
    done = await _callback(api, query, cookie)
    assert done.status_code == 303 and done.headers["location"] == "/chat"
    access = next(
        c.split(";", 1)[0]
        for c in done.headers.get_list("set-cookie")
        if c.startswith("acs_access=")
    )
    me = (await api.get("/v1/me", headers={"Cookie": access})).json()["data"]
    assert me["email"] == email and me["email_verified"] is True
    # PKCE and client authentication reached the provider.
    assert provider.token_requests[-1]["code_verifier"]
    assert provider.token_requests[-1]["redirect_uri"].endswith(CALLBACK)
    # The same identity again: the same account.
    query, cookie = await _begin(api)
    again = await _callback(api, query, cookie)
    access = next(
        c.split(";", 1)[0]
        for c in again.headers.get_list("set-cookie")
        if c.startswith("acs_access")
    )
    assert (await api.get("/v1/me", headers={"Cookie": access})).json()["data"]["id"] == me["id"]


async def test_a_callback_from_another_browser_or_twice_is_refused(api, provider) -> None:
    provider.identity = _identity(new_email())
    query, cookie = await _begin(api)
    assert (await _callback(api, query, None)).status_code == 401  # login CSRF
    assert (await _callback(api, query, "acs_oidc_state=someone-elses")).status_code == 401
    assert (await _callback(api, query, cookie)).status_code == 303
    assert (await _callback(api, query, cookie)).status_code == 401  # state spent


async def test_a_forged_id_token_is_refused(api, provider) -> None:
    provider.identity, provider.forge_signature = _identity(new_email()), True
    try:
        query, cookie = await _begin(api)
        refused = await _callback(api, query, cookie)
    finally:
        provider.forge_signature = False
    assert refused.status_code == 401 and "did not verify" in refused.json()["error"]["message"]


async def test_an_unverified_email_never_takes_over_an_existing_account(api, provider) -> None:
    owner = await sign_up(api)
    provider.identity = _identity(owner["user"]["email"], verified=False)
    query, cookie = await _begin(api)
    taken = await _callback(api, query, cookie)
    assert taken.status_code == 409
    provider.identity = _identity(owner["user"]["email"], verified=True)
    query, cookie = await _begin(api)
    linked = await _callback(api, query, cookie)
    assert linked.status_code == 303  # a verified email links to the account


async def test_redirects_stay_on_this_site(api, provider) -> None:
    for target in ("//evil.example/x", "https://evil.example", "\\\\evil"):
        response = await api.post(START, json={"redirect_to": target})
        assert response.status_code == 400, target


async def test_only_the_configured_provider_is_served(api, provider) -> None:
    for path in ("/v1/auth/oauth/google/start", "/v1/auth/oauth/OIDC/start"):
        response = await api.post(path, json={})
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    other = await api.get("/v1/auth/oauth/google/callback", params={"state": "s" * 32, "code": "c"})
    assert other.status_code == 404
    assert (await api.get("/v1/auth/oidc/login")).status_code == 404  # the old start is gone


async def test_the_earlier_redirect_uri_keeps_working(settings, provider) -> None:
    """A provider that has `/v1/auth/oidc/callback` registered: with OIDC_REDIRECT_URI set to
    it, logins name it and come back to it."""
    legacy = f"{settings.public_url}/v1/auth/oidc/callback"
    legacy_services = Services.from_settings(
        settings.model_copy(update={"oidc_redirect_uri": legacy})
    )
    async with gateway_client(settings, legacy_services) as api:
        await _legacy_login(api, provider, legacy)
    await legacy_services.aclose()


async def _legacy_login(api, provider, legacy: str) -> None:
    email = new_email()
    provider.identity = _identity(email)
    start = await api.post(START, json={"redirect_to": "/chat"})
    assert start.status_code == 200, start.text
    cookie = start.headers["set-cookie"].split(";", 1)[0]
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(start.json()["data"]["authorization_url"])
    location = urlsplit(consent.headers["location"])
    assert location.path == "/v1/auth/oidc/callback"
    done = await _callback(api, location.query, cookie, path=location.path)
    assert done.status_code == 303 and done.headers["location"] == "/chat"
    assert provider.token_requests[-1]["redirect_uri"] == legacy
