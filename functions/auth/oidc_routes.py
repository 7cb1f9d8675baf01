"""OIDC login at the API contract's paths: `POST /v1/auth/oauth/{provider}/start` answers with the
provider's authorization URL (and sets the state cookie that binds the login to this browser);
the app sends the browser there. The provider redirects back to
`GET /v1/auth/oauth/{provider}/callback`, which opens a session in cookie mode and returns the
browser to the app.

`GET /v1/auth/oidc/callback` is the same callback at the earlier path, kept so that a provider
that has it registered as the redirect URI keeps working (with OIDC_REDIRECT_URI set to it).

`GET /v1/auth/providers` tells a login page which ways to log in exist (password, and the
provider when one is configured: its name and label, nothing else), so it can show the button.

A browser's navigation to the callback (it asks for `text/html`) lands in the app with the
outcome in the fragment, which the app reads once: `<redirect_to>#login=oidc` after a login,
`/#login_error=<code>` when it failed (the error's code only; the app has its own words for
it). Any other caller gets the 303 to `redirect_to` and the error envelope, as the API says.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field, field_validator
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from functions.auth.account_routes import flows
from functions.auth.cookies import set_session_cookies
from functions.auth.schemas import LoginProviderOut, LoginProvidersOut, OAuthStarted
from shared.domain.accounts.oidc import STATE_TTL_S, OidcLogin
from shared.platform.auth.perimeter import client_of
from shared.platform.errors import AppError, NotFound, Unauthorized
from shared.platform.runtime.envelope import ok
from shared.platform.runtime.routes import Call, Route
from shared.services import Services

log = logging.getLogger(__name__)

# Sent back on both callback paths (and nowhere outside the auth routes).
STATE_COOKIE, STATE_COOKIE_PATH = "acs_oidc_state", "/v1/auth"
# What a browser's callback lands on: the app reads (and removes) the fragment.
SIGNED_IN_FRAGMENT, ERROR_FRAGMENT = "login=oidc", "login_error"
# The login methods change only with the settings: a page may keep the answer a while.
PROVIDERS_CACHE = "public, max-age=300"


class OidcStart(BaseModel):
    redirect_to: str = Field(default="/", max_length=512)

    @field_validator("redirect_to")
    @classmethod
    def _same_site_path(cls, value: str) -> str:
        # Only a path of this site: never an open redirect to another host.
        if not value.startswith("/") or value.startswith("//") or "\\" in value:
            raise ValueError("redirect_to must be a path on this site")
        # Browsers drop tabs and newlines from a URL: "/\t/evil.example" would become "//…".
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("redirect_to must be a path on this site")
        return value


class OidcReturn(BaseModel):
    state: str = Field(min_length=16, max_length=256)
    code: str | None = Field(default=None, max_length=2048)
    error: str | None = Field(default=None, max_length=256)


def _provider(call: Call[Any], services: Services) -> None:
    """The one configured provider is served under its OIDC_PROVIDER_NAME; any other is 404."""
    name = call.path_params.get("provider", "")
    if name != services.settings.oidc_provider_name:
        raise NotFound(f"no OAuth provider named {name[:64]!r}")


async def oauth_start(call: Call[OidcStart], *, services: Services) -> Response:
    _provider(call, services)
    url, state = await OidcLogin(services.settings, services.redis).begin(call.body.redirect_to)
    started = OAuthStarted(authorization_url=url, state_expires_in=STATE_TTL_S)
    response = ok(started.model_dump(mode="json"))
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_TTL_S,
        path=STATE_COOKIE_PATH,
        httponly=True,
        secure=services.settings.auth_cookie_secure,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )
    return response


async def oauth_callback(call: Call[OidcReturn], *, services: Services) -> Response:
    _provider(call, services)
    return await oidc_callback(call, services=services)


async def oidc_callback(call: Call[OidcReturn], *, services: Services) -> Response:
    browser = _navigating(call.request)
    try:
        return await _log_in(call, services, browser=browser)
    except AppError as exc:
        if not browser:
            raise
        # The page shows what went wrong in its own words; the reason stays in the log.
        code = "denied" if call.body.error else exc.code
        log.info("OIDC login refused (%s): %s", code, exc.message)
        response = RedirectResponse(f"/#{ERROR_FRAGMENT}={code}", status_code=303)
        response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
        return response


async def _log_in(call: Call[OidcReturn], services: Services, *, browser: bool) -> Response:
    body = call.body
    if body.error or not body.code:
        raise Unauthorized(f"the OIDC provider did not log you in ({body.error or 'no code'})")
    identity = await OidcLogin(services.settings, services.redis).finish(
        body.code, body.state, call.request.cookies.get(STATE_COOKIE)
    )
    _, pair = await flows(services).oidc_log_in(identity, client_of(call.request))
    target = identity.redirect_to  # a path of this site (checked when the login started)
    if browser:
        target = f"{target.split('#', 1)[0]}#{SIGNED_IN_FRAGMENT}"
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(response, services.settings, pair)
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return response


def _navigating(request: Request) -> bool:
    """The browser itself opens the callback (the provider redirected it), not an API client."""
    return request.headers.get("sec-fetch-mode") == "navigate" or "text/html" in (
        request.headers.get("accept", "")
    )


async def login_providers(call: Call[None], *, services: Services) -> Response:
    """Password always; the OIDC provider when configured. Its name and label only: the
    issuer, client id and secret stay on the server."""
    settings = services.settings
    providers = [LoginProviderOut(kind="password", name="password", label="Password")]
    if settings.oidc_configured:
        providers.append(
            LoginProviderOut(
                kind="oidc", name=settings.oidc_provider_name, label=settings.oidc_label
            )
        )
    response = ok(LoginProvidersOut(providers=providers).model_dump(mode="json"))
    response.headers["cache-control"] = PROVIDERS_CACHE
    return response


ROUTES = [
    Route("GET", "/v1/auth/providers", login_providers,
          "The ways to log in: password, and the OIDC provider (name and label) when configured",
          response_model=LoginProvidersOut),
    Route("POST", "/v1/auth/oauth/{provider}/start", oauth_start,
          "Start an OAuth/OIDC login: the provider's authorization URL to send the browser to"
          " (404 for another provider, or when OIDC is not configured)",
          request_model=OidcStart, response_model=OAuthStarted, rate_limit="login_ip"),
    Route("GET", "/v1/auth/oauth/{provider}/callback", oauth_callback,
          "The provider's redirect back: session cookies, then 303 to the app",
          request_model=OidcReturn, rate_limit="login_ip", status=303, answer="redirect"),
    Route("GET", "/v1/auth/oidc/callback", oidc_callback,
          "The same callback at its earlier path (a redirect URI registered before)",
          request_model=OidcReturn, rate_limit="login_ip", status=303, answer="redirect"),
]  # fmt: skip
