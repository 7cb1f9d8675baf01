"""MFA (`mfa/enable`, `mfa/verify`): enrolment, the second step of an MFA login, and
removal; and the user's own sessions (devices)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from functions.auth.account_routes import cookie_login_from_own_site, flows
from functions.auth.cookies import token_response
from functions.auth.schemas import (
    CodeIn,
    Enrollment,
    MfaVerified,
    MfaVerifyIn,
    RecoveryCodes,
    SessionList,
    SessionOut,
)
from shared.domain.accounts import accounts
from shared.platform import audit
from shared.platform.auth.perimeter import authenticate, client_of
from shared.platform.errors import ValidationError
from shared.platform.runtime.routes import Access, Call, Route
from shared.services import Services


async def mfa_enable(call: Call[Any], *, services: Services) -> Enrollment:
    auth = flows(services)
    async with services.db.connection() as conn:
        user = await accounts.get_caller(conn, call.user.user_id)
    enrollment = await auth.mfa.begin(user.id, user.email)
    return Enrollment.model_validate(enrollment, from_attributes=True)


async def mfa_verify(call: Call[MfaVerifyIn], *, services: Services) -> Response | RecoveryCodes:
    """With `mfa_ticket`: the second step of a login (no access token; the answer is the
    login's, in the mode the login asked for). Without: confirms the caller's enrolment."""
    body = call.body
    if body.mfa_ticket:
        return await _finish_login(call, body.mfa_ticket, body.code, services)
    user_id = (await authenticate(call.request, services)).user_id
    auth = flows(services)
    codes = await auth.mfa.confirm(user_id, body.code)
    actor = client_of(call.request, user_id)
    await audit.record(auth.pool, "mfa_enabled", actor=actor, subject_user_id=user_id)
    return RecoveryCodes(recovery_codes=codes)


async def _finish_login(
    call: Call[MfaVerifyIn], ticket: str, code: str, services: Services
) -> Response:
    auth, client = flows(services), client_of(call.request)
    # A login that asked for cookies finishes only from this site (login CSRF, as at login).
    cookie_login_from_own_site(
        call, (await auth.mfa_tickets.peek(ticket, client)).use_cookies, services
    )
    user, pair, use_cookies = await auth.finish_mfa_login(ticket, code, client)
    return token_response(services.settings, pair, user, use_cookies=use_cookies)


async def mfa_disable(call: Call[CodeIn], *, services: Services) -> dict[str, bool]:
    """Needs a current code (or a recovery code): a stolen session alone cannot remove MFA."""
    auth, user_id = flows(services), call.user.user_id
    actor = client_of(call.request, user_id)
    if not await auth.mfa.enabled(user_id):
        raise ValidationError("MFA is not enabled")
    if await auth.mfa.verify(user_id, call.body.code) is None:
        await audit.record(auth.pool, "mfa_failed", actor=actor, subject_user_id=user_id)
        raise ValidationError("that code is not right")
    await auth.mfa.disable(user_id)
    await audit.record(auth.pool, "mfa_disabled", actor=actor, subject_user_id=user_id)
    return {"mfa_enabled": False}


async def list_sessions(call: Call[Any], *, services: Services) -> SessionList:
    sessions = await flows(services).sessions.list_for(call.user.user_id)
    current = call.user.session_id
    items = [SessionOut.model_validate(s, from_attributes=True) for s in sessions]
    return SessionList(items=[s.model_copy(update={"current": s.id == current}) for s in items])


async def revoke_session(call: Call[Any], *, services: Services) -> dict[str, bool]:
    auth, user_id = flows(services), call.user.user_id
    session_id = call.uuid_param("id")
    await auth.sessions.revoke_for(user_id, session_id)
    await audit.record(
        auth.pool,
        "session_revoked",
        actor=client_of(call.request, user_id),
        subject_user_id=user_id,
        details={"session_id": session_id},
    )
    return {"revoked": True}


ROUTES = [
    Route("POST", "/v1/auth/mfa/enable", mfa_enable,
          "Start TOTP enrolment: secret, otpauth URI and QR code", access=Access.USER,
          response_model=Enrollment),
    # Public: with `mfa_ticket` it is the second step of a login; without, it authenticates
    # the caller itself (bearer or cookie) and confirms the enrolment.
    Route("POST", "/v1/auth/mfa/verify", mfa_verify,
          "{code} with the access token: enable MFA, returns one-time recovery codes;"
          " {mfa_ticket, code}: finish an MFA login, returns the login's tokens",
          request_model=MfaVerifyIn, response_model=MfaVerified, rate_limit="login_ip"),
    Route("POST", "/v1/auth/mfa/disable", mfa_disable, "Disable MFA (needs a code)",
          access=Access.USER, request_model=CodeIn),
    Route("GET", "/v1/auth/sessions", list_sessions, "The user's signed-in sessions",
          access=Access.USER, response_model=SessionList),
    Route("DELETE", "/v1/auth/sessions/{id}", revoke_session, "Sign one session out",
          access=Access.USER),
]  # fmt: skip
