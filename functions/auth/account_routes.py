"""Accounts and sessions: sign-up, login (with MFA), refresh, logout, `GET /v1/me`, email
verification and passwords."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from functions.auth.cookies import clear_cookies, token_response, user_out
from functions.auth.schemas import (
    Accepted,
    CompleteReset,
    Credentials,
    EmailIn,
    PasswordChange,
    RefreshRequest,
    SignUp,
    TokenIn,
    Tokens,
    UserOut,
)
from shared.domain.accounts import accounts
from shared.domain.accounts.flows import AuthFlows
from shared.platform.auth.perimeter import REFRESH_COOKIE, check_origin, client_of
from shared.platform.errors import Unauthorized
from shared.platform.runtime.envelope import ok
from shared.platform.runtime.routes import Access, Call, Route
from shared.services import Services


def flows(services: Services) -> AuthFlows:
    return AuthFlows(services)


def cookie_login_from_own_site(call: Call[Any], use_cookies: bool, services: Services) -> None:
    """A cross-site page could log the victim's browser into the attacker's account (login
    CSRF); a request that asks for cookies must come from an allowed origin."""
    if use_cookies:
        check_origin(services.settings, call.request)


async def sign_up(call: Call[SignUp], *, services: Services) -> Response:
    body = call.body
    cookie_login_from_own_site(call, body.use_cookies, services)
    user, pair = await flows(services).sign_up(
        body.email, body.password, body.handle, client_of(call.request)
    )
    settings = services.settings
    return token_response(settings, pair, user, use_cookies=body.use_cookies, status=201)


async def log_in(call: Call[Credentials], *, services: Services) -> Response:
    body = call.body
    cookie_login_from_own_site(call, body.use_cookies, services)
    user, pair = await flows(services).log_in(
        body.email,
        body.password,
        body.mfa_code,
        client_of(call.request),
        use_cookies=body.use_cookies,
    )
    return token_response(services.settings, pair, user, use_cookies=body.use_cookies)


async def refresh(call: Call[RefreshRequest], *, services: Services) -> Response:
    settings, token = services.settings, call.body.refresh_token
    use_cookies = token is None
    if token is None:
        token = call.request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise Unauthorized("no refresh token (body or cookie)")
        check_origin(settings, call.request)
    pair = await flows(services).refresh(token, client_of(call.request))
    return token_response(settings, pair, None, use_cookies=use_cookies)


async def log_out(call: Call[Any], *, services: Services) -> Response:
    user = call.user
    await flows(services).log_out(user.user_id, user.session_id, client_of(call.request))
    return clear_cookies(ok({"logged_out": True}), services.settings)


async def me(call: Call[Any], *, services: Services) -> UserOut:
    auth = flows(services)
    async with services.db.connection() as conn:
        user = await accounts.get_caller(conn, call.user.user_id)
        has_password = await accounts.has_password(conn, user.id)
    return user_out(user, mfa_enabled=await auth.mfa.enabled(user.id), has_password=has_password)


async def verify_email(call: Call[TokenIn], *, services: Services) -> UserOut:
    return user_out(await flows(services).verify_email(call.body.token, client_of(call.request)))


async def resend_verification(call: Call[Any], *, services: Services) -> Accepted:
    sent = await flows(services).resend_verification(call.user.user_id)
    return Accepted(accepted=sent, message="sent" if sent else "the email is verified already")


async def request_reset(call: Call[EmailIn], *, services: Services) -> Accepted:
    await flows(services).forgot_password(call.body.email, client_of(call.request))
    return Accepted(message="if an account has this email, a reset link is on its way")


async def complete_reset(call: Call[CompleteReset], *, services: Services) -> Accepted:
    body = call.body
    await flows(services).reset_password(body.token, body.new_password, client_of(call.request))
    return Accepted(message="password changed; every session was signed out")


async def change_password(call: Call[PasswordChange], *, services: Services) -> Accepted:
    user, body = call.user, call.body
    await flows(services).change_password(
        user.user_id,
        user.session_id,
        body.current_password,
        body.new_password,
        client_of(call.request, user.user_id),
    )
    return Accepted(message="password changed; other sessions were signed out")


ROUTES = [
    Route("POST", "/v1/auth/signup", sign_up, "Create an account and log in",
          request_model=SignUp, response_model=Tokens, status=201, rate_limit="login_ip"),
    Route("POST", "/v1/auth/login", log_in, "Log in (mfa_code when MFA is on)",
          request_model=Credentials, response_model=Tokens, rate_limit="login_ip"),
    Route("POST", "/v1/auth/refresh", refresh, "Rotate a refresh token (body or cookie)",
          request_model=RefreshRequest, response_model=Tokens),
    Route("POST", "/v1/auth/logout", log_out, "Revoke the current session",
          access=Access.USER),
    Route("GET", "/v1/me", me, "The current user", access=Access.USER,
          response_model=UserOut),
    # The API contract's paths; the mail links open the app's /verify-email and
    # /reset-password pages, which post the token from the link here.
    Route("POST", "/v1/auth/verify_email", verify_email, "Confirm an email address",
          request_model=TokenIn, response_model=UserOut, rate_limit="login_ip"),
    Route("POST", "/v1/auth/verify_email/resend", resend_verification,
          "Send the verification mail again", access=Access.USER, response_model=Accepted),
    Route("POST", "/v1/auth/request_reset", request_reset, "Mail a password-reset link",
          request_model=EmailIn, response_model=Accepted, status=202, rate_limit="login_ip"),
    Route("POST", "/v1/auth/complete_reset", complete_reset,
          "Set a new password with a reset token (ends every session)",
          request_model=CompleteReset, response_model=Accepted, rate_limit="login_ip"),
    Route("POST", "/v1/auth/password/change", change_password,
          "Change the password (ends the other sessions)", access=Access.USER,
          request_model=PasswordChange, response_model=Accepted),
]  # fmt: skip
