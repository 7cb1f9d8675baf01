"""OIDC login at the API contract's paths: `POST /v1/auth/oauth/{provider}/start` answers with the
provider's authorization URL (and sets the state cookie that binds the login to this browser);
the app sends the browser there. The provider redirects back to
`GET /v1/auth/oauth/{provider}/callback`, which opens a session in cookie mode and returns the
browser to the app.

`GET /v1/auth/oidc/callback` is the same callback at the earlier path, kept so that a provider
that has it registered as the redirect URI keeps working (with OIDC_REDIRECT_URI set to it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator
from starlette.responses import RedirectResponse, Response

from functions.auth.account_routes import flows
from functions.auth.cookies import set_session_cookies
from functions.auth.schemas import OAuthStarted
from shared.domain.accounts.oidc import STATE_TTL_S, OidcLogin
from shared.platform.auth.perimeter import client_of
from shared.platform.errors import NotFound, Unauthorized
from shared.platform.runtime.envelope import ok
from shared.platform.runtime.routes import Call, Route
from shared.services import Services

# Sent back on both callback paths (and nowhere outside the auth routes).
STATE_COOKIE, STATE_COOKIE_PATH = "acs_oidc_state", "/v1/auth"


class OidcStart(BaseModel):
    redirect_to: str = Field(default="/", max_length=512)

    @field_validator("redirect_to")
    @classmethod
    def _same_site_path(cls, value: str) -> str:
        # Only a path of this site: never an open redirect to another host.
        if not value.startswith("/") or value.startswith("//") or "\\" in value:
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
    body = call.body
    if body.error or not body.code:
        raise Unauthorized(f"the OIDC provider did not log you in ({body.error or 'no code'})")
    identity = await OidcLogin(services.settings, services.redis).finish(
        body.code, body.state, call.request.cookies.get(STATE_COOKIE)
    )
    _, pair = await flows(services).oidc_log_in(identity, client_of(call.request))
    response = RedirectResponse(identity.redirect_to, status_code=303)
    set_session_cookies(response, services.settings, pair)
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return response


ROUTES = [
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
