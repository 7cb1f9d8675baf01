"""MFA enrolment and removal, and the user's own sessions (devices)."""

from __future__ import annotations

from typing import Any

from functions.auth.account_routes import flows
from functions.auth.schemas import CodeIn, Enrollment, RecoveryCodes, SessionList, SessionOut
from shared import audit
from shared.auth import accounts
from shared.auth.perimeter import client_of
from shared.errors import ValidationError
from shared.runtime.routes import Access, Call, Route


async def mfa_setup(call: Call[Any]) -> Enrollment:
    auth = await flows()
    user = await accounts.get_caller(auth.pool, call.user.user_id)
    enrollment = await auth.mfa.begin(user.id, user.email)
    return Enrollment(**enrollment.__dict__)


async def mfa_confirm(call: Call[CodeIn]) -> RecoveryCodes:
    assert call.body is not None
    auth, user_id = await flows(), call.user.user_id
    codes = await auth.mfa.confirm(user_id, call.body.code)
    actor = client_of(call.request, user_id)
    await audit.record(auth.pool, "mfa_enabled", actor=actor, subject_user_id=user_id)
    return RecoveryCodes(recovery_codes=codes)


async def mfa_disable(call: Call[CodeIn]) -> dict[str, bool]:
    """Needs a current code (or a recovery code): a stolen session alone cannot remove MFA."""
    assert call.body is not None
    auth, user_id = await flows(), call.user.user_id
    actor = client_of(call.request, user_id)
    if not await auth.mfa.enabled(user_id):
        raise ValidationError("MFA is not enabled")
    if await auth.mfa.verify(user_id, call.body.code) is None:
        await audit.record(auth.pool, "mfa_failed", actor=actor, subject_user_id=user_id)
        raise ValidationError("that code is not right")
    await auth.mfa.disable(user_id)
    await audit.record(auth.pool, "mfa_disabled", actor=actor, subject_user_id=user_id)
    return {"mfa_enabled": False}


async def list_sessions(call: Call[Any]) -> SessionList:
    sessions = await (await flows()).sessions.list_for(call.user.user_id)
    current = call.user.session_id
    return SessionList(items=[SessionOut(**s.__dict__, current=s.id == current) for s in sessions])


async def revoke_session(call: Call[Any]) -> dict[str, bool]:
    auth, user_id = await flows(), call.user.user_id
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
    Route("POST", "/v1/auth/mfa/setup", mfa_setup,
          "Start TOTP enrolment: secret, otpauth URI and QR code", access=Access.USER,
          response_model=Enrollment),
    Route("POST", "/v1/auth/mfa/confirm", mfa_confirm,
          "Enable MFA with a first code; returns one-time recovery codes", access=Access.USER,
          request_model=CodeIn, response_model=RecoveryCodes),
    Route("POST", "/v1/auth/mfa/disable", mfa_disable, "Disable MFA (needs a code)",
          access=Access.USER, request_model=CodeIn),
    Route("GET", "/v1/auth/sessions", list_sessions, "The user's signed-in sessions",
          access=Access.USER, response_model=SessionList),
    Route("DELETE", "/v1/auth/sessions/{id}", revoke_session, "Sign one session out",
          access=Access.USER),
]  # fmt: skip
