"""Request and response models of the auth function (layered: inputs never reuse outputs)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, RootModel, field_validator

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


class EmailIn(BaseModel):
    email: str = Field(max_length=254)

    _check = field_validator("email")(classmethod(lambda cls, v: _email(v)))


class Credentials(EmailIn):
    password: str = Field(min_length=1, max_length=256)
    mfa_code: str | None = Field(default=None, max_length=32)
    # Cookie mode: tokens go into HttpOnly cookies and are left out of the body.
    use_cookies: bool = False


class SignUp(EmailIn):
    password: str = Field(min_length=1, max_length=256)
    handle: str | None = Field(default=None, max_length=64)
    use_cookies: bool = False


class RefreshRequest(BaseModel):
    # Absent in cookie mode: the refresh cookie carries it.
    refresh_token: str | None = Field(default=None, min_length=16, max_length=256)


class TokenIn(BaseModel):
    token: str = Field(min_length=16, max_length=256)


class CompleteReset(TokenIn):
    new_password: str = Field(min_length=1, max_length=256)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class CodeIn(BaseModel):
    code: str = Field(min_length=6, max_length=32)


class MfaVerifyIn(CodeIn):
    # With a ticket (from a login's 401 `mfa_required`): finishes that login. Without one (and
    # with the caller's access token): confirms MFA enrolment.
    mfa_ticket: str | None = Field(default=None, min_length=16, max_length=256)


class UserOut(BaseModel):
    id: str
    email: str
    handle: str | None
    role: str
    created_at: datetime
    email_verified: bool
    mfa_enabled: bool | None = None
    # GET /v1/me: whether the account has a password (DELETE /v1/me then asks for it); an
    # account made through an OIDC provider may have none. Null in token answers.
    has_password: bool | None = None


class Tokens(BaseModel):
    user: UserOut | None = None
    access_token: str | None
    refresh_token: str | None
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    mode: str = "bearer"
    # The session these tokens belong to (what `{"type": "auth", "session": ...}` may name on a
    # WebSocket, with the session cookie).
    session_id: str | None = None


class Accepted(BaseModel):
    accepted: bool = True
    message: str


class Enrollment(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str
    qr_png: str


class RecoveryCodes(BaseModel):
    mfa_enabled: bool = True
    recovery_codes: list[str]


class MfaVerified(RootModel[RecoveryCodes | Tokens]):
    """`mfa/verify`: recovery codes (enrolment confirmed) or tokens (an MFA login finished)."""


class OAuthStarted(BaseModel):
    authorization_url: str
    state_expires_in: int


class LoginProviderOut(BaseModel):
    """A way to log in, as a login page shows it: a name and a label, never a secret."""

    kind: Literal["password", "oidc"]
    # "password", or the OIDC provider's name (the `{provider}` of its start route).
    name: str
    label: str


class LoginProvidersOut(BaseModel):
    providers: list[LoginProviderOut]


class SessionOut(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool = False  # the caller's own session


class SessionList(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None = None
