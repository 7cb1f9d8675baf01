"""Settings of the perimeter: tokens, cookies, MFA, mail, rate limits and caps.

A mixin of `shared.platform.settings.Settings` (one settings object; this file only keeps
settings.py short).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

DEV_JWT_SECRET = "dev-jwt-secret-for-local-use-only-0000"  # noqa: S105 - refused outside dev
DEV_ENCRYPTION_KEY = "dev-encryption-key-for-local-use-only"


class AuthSettings(BaseSettings):
    # Access JWTs are HS256 (pinned) signed with the key named AUTH_JWT_KID; keys listed in
    # AUTH_JWT_PREVIOUS_KEYS ({kid: secret}) still verify, so keys rotate without logging anyone
    # out. Refresh tokens are opaque, rotated on every use; a session is their family.
    auth_jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    auth_jwt_kid: str = "k1"
    auth_jwt_previous_keys: dict[str, SecretStr] = Field(default_factory=dict)
    auth_access_ttl_s: int = Field(default=900, ge=900, le=3600)
    auth_refresh_ttl_s: int = Field(default=30 * 86_400, ge=3600)
    auth_issuer: str = "adaptive-chat"
    # Encrypts TOTP secrets at rest (AES-GCM, key derived with HKDF); not the JWT key, so the
    # JWT key can rotate without disabling everyone's MFA.
    auth_encryption_key: SecretStr = SecretStr(DEV_ENCRYPTION_KEY)
    # Logging in again ends the user's other sessions.
    auth_single_session: bool = False

    # Cookie mode: HttpOnly cookies instead of bearer tokens; state-changing requests made with
    # a cookie must come from the gateway's own origin or one in CORS_ALLOW_ORIGINS.
    auth_cookie_secure: bool = True
    auth_cookie_samesite: Literal["lax", "strict"] = "lax"

    # Lockouts and budgets (DESIGN.md §5): failed logins per account in a window, login
    # attempts per client IP per minute, failed MFA codes before MFA locks for a while.
    auth_login_failures_max: int = Field(default=5, ge=1)
    auth_login_failure_window_s: int = Field(default=900, ge=1)
    auth_login_ip_per_min: int = Field(default=30, ge=1)
    auth_mfa_failures_max: int = Field(default=5, ge=1)
    auth_mfa_lock_s: int = Field(default=300, ge=1)
    auth_reset_ttl_s: int = Field(default=900, ge=60, le=3600)
    auth_verify_ttl_s: int = Field(default=86_400, ge=600)

    # Per-user token buckets and concurrency caps.
    rate_chat_per_min: int = Field(default=60, ge=1)
    rate_uploads_per_min: int = Field(default=10, ge=1)
    rate_configops_per_hour: int = Field(default=30, ge=1)
    # Feedback (POST /v1/preferences and the personalization controls) per user per minute.
    rate_feedback_per_min: int = Field(default=30, ge=1)
    # Voice (transcribe and speak: each holds the voice service for seconds) per user per minute.
    rate_voice_per_min: int = Field(default=20, ge=1)
    cap_workflows_per_user: int = Field(default=3, ge=1)
    cap_decodes_per_user: int = Field(default=2, ge=1)

    # OIDC login (authorization code + PKCE) with one configurable provider; unset: off.
    # Register `<PUBLIC_BASE_URL>/v1/auth/oauth/<OIDC_PROVIDER_NAME>/callback` as the redirect
    # URI at the provider. A provider that has the earlier `<PUBLIC_BASE_URL>/v1/auth/oidc/callback`
    # registered keeps working: that path is still served; set OIDC_REDIRECT_URI to it.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_provider_name: str = "oidc"
    oidc_scopes: str = "openid email profile"
    oidc_redirect_uri: str | None = None
    # What the web app's button says: "Continue with <OIDC_PROVIDER_LABEL>" (public, as is
    # OIDC_PROVIDER_NAME: `GET /v1/auth/providers` answers both); unset: the name, title-cased.
    oidc_provider_label: str | None = Field(default=None, max_length=64)

    # Outgoing mail. Without SMTP_HOST the local stack runs a loopback SMTP sink that writes
    # each message to <data_dir>/mail/ (dev and tests read mail there).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    mail_sink_port: int = 8025
    mail_from: str = "Adaptive Chat <no-reply@localhost>"
    # Where links in mail point (the SPA); defaults to the local gateway.
    public_base_url: str | None = None

    @property
    def oidc_configured(self) -> bool:
        """OIDC login is on: an issuer and a client id are set."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def oidc_label(self) -> str:
        """The provider's name as a login button shows it."""
        label = (self.oidc_provider_label or "").strip()
        return label or self.oidc_provider_name.replace("_", " ").replace("-", " ").title()
