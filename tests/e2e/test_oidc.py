"""OIDC login in a browser, end to end: a gateway configured with a provider (the fake OpenID
provider of tests/fixtures, a real HTTP server the browser talks to) shows "Continue with
<label>" on the log-in page; clicking it goes through the provider's authorization and the
API's callback and ends signed in, on the page the login started from. A provider's refusal
comes back as an alert on the log-in page. An account made this way has no password: deleting
it (Settings → Your data) asks for none, the fresh sign-in is the proof.

The gateway gets a provider of its own (issuer, client and label), on a port of this module:
the session's OIDC_ISSUER belongs to the integration tests' provider. Logging in needs no
model, so this gateway is pointed at no inference service."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from playwright.async_api import expect

from tests.e2e.conftest import Tab, delete_my_account, gateway_process
from tests.fixtures.oidc_provider import FakeProvider, ProviderServer
from tests.helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LABEL = "Example ID"
BUTTON = f"Continue with {LABEL}"
NO_INFERENCE = "http://127.0.0.1:9"  # nothing listens: no turn is asked for here


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    port = free_port()
    fake = FakeProvider(
        issuer=f"http://127.0.0.1:{port}",
        client_id="acs-e2e-client",
        client_secret="acs-e2e-client-secret",
    )
    with ProviderServer(fake, port):
        yield fake


@pytest.fixture(scope="module")
def web_gateway(migrated, web_build, tmp_path_factory, provider) -> Iterator[str]:
    """This module's gateway (the `tab` fixture opens pages on it), with the provider."""
    env = {
        "OIDC_ISSUER": provider.issuer,
        "OIDC_CLIENT_ID": provider.client_id,
        "OIDC_CLIENT_SECRET": provider.client_secret,
        "OIDC_PROVIDER_LABEL": LABEL,
    }
    with gateway_process(NO_INFERENCE, tmp_path_factory.mktemp("oidc-gateway"), **env) as url:
        yield url


async def continue_with_provider(tab: Tab, provider: FakeProvider) -> str:
    """A new identity at the provider, signed in from Settings; its e-mail. Ends on Settings."""
    email = f"e2e-oidc-{uuid.uuid4().hex[:10]}@example.test"
    provider.identity = {"sub": f"sub-{uuid.uuid4().hex}", "email": email, "email_verified": True}
    await tab.page.goto("/settings")
    await tab.page.get_by_role("button", name=BUTTON, exact=True).click()
    settings_tab = tab.page.get_by_role("tab", name="Settings", exact=True)
    await expect(settings_tab).to_have_attribute("aria-selected", "true")
    return email


async def test_continue_with_the_provider_ends_signed_in(tab: Tab, provider) -> None:
    page = tab.page
    email = f"e2e-oidc-{uuid.uuid4().hex[:10]}@example.test"
    provider.identity = {"sub": f"sub-{uuid.uuid4().hex}", "email": email, "email_verified": True}
    await page.goto("/settings")
    button = page.get_by_role("button", name=BUTTON, exact=True)
    await expect(button).to_be_visible()
    await expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    await tab.shoot("login-oidc")

    authorize = f"{provider.issuer}/authorize?"
    async with page.expect_request(lambda r: r.url.startswith(authorize)) as went:
        await button.click()
    assert "code_challenge=" in (await went.value).url

    # Back through the callback: signed in, on the page the login started from.
    settings_tab = page.get_by_role("tab", name="Settings", exact=True)
    await expect(settings_tab).to_have_attribute("aria-selected", "true")
    await expect(page).to_have_url(re.compile(r"/settings$"))  # the fragment is read and dropped
    assert (await tab.api("/v1/me"))["email"] == email
    assert await page.evaluate("localStorage.getItem('adaptive.signedIn')") == "1"
    assert provider.token_requests[-1]["code_verifier"]

    await page.reload()  # the app knows the session now, as after a password login
    await expect(settings_tab).to_have_attribute("aria-selected", "true")
    tab.assert_clean()


async def test_a_refused_login_is_shown_on_the_login_page(tab: Tab) -> None:
    page = tab.page
    # What the provider sends back when the user says no.
    await page.goto(f"/v1/auth/oauth/oidc/callback?state={'s' * 32}&error=access_denied")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("did not sign you in")
    await expect(page).to_have_url(re.compile(r"/$"))
    await expect(page.get_by_role("button", name=BUTTON, exact=True)).to_be_visible()
    tab.assert_clean()


async def test_an_account_without_a_password_is_deleted_with_a_fresh_sign_in(
    tab: Tab, provider, settings
) -> None:
    email = await continue_with_provider(tab, provider)
    me = await tab.api("/v1/me")
    assert (me["email"], me["has_password"]) == (email, False)

    await delete_my_account(tab, password=None)  # the dialog asks for no password

    # No queue worker runs with this gateway: the account waits, disabled, for its purge.
    async with await psycopg.AsyncConnection.connect(settings.postgres_dsn) as conn:
        row = await (
            await conn.execute(
                "SELECT u.is_active, p.status, p.requested_by FROM app_user u"
                " JOIN account_purge p ON p.user_id = u.id WHERE u.email = %s",
                (email,),
            )
        ).fetchone()
    assert row == (False, "pending", "user")
    tab.assert_clean()
