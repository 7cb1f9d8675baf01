"""Token answers in both modes: bearer (tokens in the JSON body) or cookie (HttpOnly, Secure,
SameSite cookies; the body leaves the tokens out so page scripts never hold them)."""

from __future__ import annotations

from starlette.responses import Response

from functions.auth.schemas import Tokens, UserOut
from shared.domain.accounts.accounts import User
from shared.platform.auth.perimeter import ACCESS_COOKIE, REFRESH_COOKIE, REFRESH_COOKIE_PATH
from shared.platform.auth.sessions import TokenPair
from shared.platform.runtime.envelope import ok
from shared.platform.settings import Settings


def user_out(
    user: User, *, mfa_enabled: bool | None = None, has_password: bool | None = None
) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        handle=user.handle,
        role=user.role,
        created_at=user.created_at,
        email_verified=user.email_verified,
        mfa_enabled=mfa_enabled,
        has_password=has_password,
    )


def token_response(
    settings: Settings,
    pair: TokenPair,
    user: User | None,
    *,
    use_cookies: bool,
    status: int = 200,
) -> Response:
    body = Tokens(
        user=user_out(user) if user else None,
        access_token=None if use_cookies else pair.access_token,
        refresh_token=None if use_cookies else pair.refresh_token,
        expires_in=pair.expires_in,
        mode="cookie" if use_cookies else "bearer",
        session_id=pair.principal.session_id,
    )
    response = ok(body.model_dump(mode="json"), status=status)
    if use_cookies:
        set_session_cookies(response, settings, pair)
    return response


def set_session_cookies(response: Response, settings: Settings, pair: TokenPair) -> None:
    secure = settings.auth_cookie_secure
    response.set_cookie(
        ACCESS_COOKIE,
        pair.access_token,
        max_age=pair.expires_in,
        path="/",
        samesite=settings.auth_cookie_samesite,
        httponly=True,
        secure=secure,
    )
    # Sent only to the auth routes, and never on a cross-site request.
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=settings.auth_refresh_ttl_s,
        path=REFRESH_COOKIE_PATH,
        samesite="strict",
        httponly=True,
        secure=secure,
    )


def clear_cookies(response: Response, settings: Settings) -> Response:
    secure, samesite = settings.auth_cookie_secure, settings.auth_cookie_samesite
    response.delete_cookie(ACCESS_COOKIE, path="/", samesite=samesite, httponly=True, secure=secure)
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, samesite="strict", httponly=True, secure=secure
    )
    return response
