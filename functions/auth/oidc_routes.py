"""OIDC login (browser redirects): `login` sends the browser to the provider, `callback` comes
back with a code, opens a session in cookie mode and returns the browser to the app."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator
from starlette.responses import RedirectResponse, Response

from functions.auth.account_routes import flows
from functions.auth.cookies import set_session_cookies
from shared.auth.oidc import STATE_TTL_S, OidcLogin
from shared.auth.perimeter import client_of
from shared.deps import get_deps
from shared.errors import Unauthorized
from shared.runtime.routes import Call, Route

STATE_COOKIE, STATE_COOKIE_PATH = "acs_oidc_state", "/v1/auth/oidc"


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


async def oidc_login(call: Call[OidcStart]) -> Response:
    assert call.body is not None
    deps = get_deps()
    url, state = await OidcLogin(deps.settings, deps.redis).begin(call.body.redirect_to)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_TTL_S,
        path=STATE_COOKIE_PATH,
        httponly=True,
        secure=deps.settings.auth_cookie_secure,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )
    return response


async def oidc_callback(call: Call[OidcReturn]) -> Response:
    body = call.body
    assert body is not None
    if body.error or not body.code:
        raise Unauthorized(f"the OIDC provider did not log you in ({body.error or 'no code'})")
    deps = get_deps()
    identity = await OidcLogin(deps.settings, deps.redis).finish(
        body.code, body.state, call.request.cookies.get(STATE_COOKIE)
    )
    _, pair = await (await flows()).oidc_log_in(identity, client_of(call.request))
    response = RedirectResponse(identity.redirect_to, status_code=303)
    set_session_cookies(response, deps.settings, pair)
    response.delete_cookie(STATE_COOKIE, path=STATE_COOKIE_PATH)
    return response


ROUTES = [
    Route("GET", "/v1/auth/oidc/login", oidc_login,
          "Start an OIDC login (302 to the provider)", request_model=OidcStart,
          rate_limit="login_ip", status=302, answer="redirect"),
    Route("GET", "/v1/auth/oidc/callback", oidc_callback,
          "The provider's redirect back: session cookies, then 303 to the app",
          request_model=OidcReturn, rate_limit="login_ip", status=303, answer="redirect"),
]  # fmt: skip
