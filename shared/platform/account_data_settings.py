"""Settings of a user's data rights (functions/account_data): exports and account deletion.

A mixin of `shared.platform.settings.Settings` (one settings object; this file only keeps
settings.py short).
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class AccountDataSettings(BaseSettings):
    # A ready export's zip stays in the store this long; the hourly schedule then deletes it
    # and marks the export expired.
    export_ttl_s: int = Field(default=7 * 86_400, ge=3600)
    # The presigned GET URL of a ready export (the web app navigates to it at once).
    export_url_ttl_s: int = Field(default=300, ge=30, le=3600)
    # An export larger than this fails (reason in the row and the DLQ message) instead of
    # filling the function's disk; Lambda's /tmp is at most 10 GB.
    export_max_bytes: int = Field(default=2 * 1024**3, ge=1024)
    # Deleting an account without a password (OIDC only, no MFA) needs a login this recent.
    account_delete_reauth_s: int = Field(default=600, ge=60)
    # The key of the audit log's pseudonyms (HMAC of the user id). Unset: derived from
    # AUTH_ENCRYPTION_KEY, so a deployment needs no extra secret; set it to keep pseudonyms
    # stable across a rotation of that key.
    account_pseudonym_key: SecretStr | None = None
    # A purge still pending this long after it was asked for (its messages spent) is queued
    # again by the hourly schedule: each step is idempotent, so it resumes where it stopped.
    account_purge_resume_after_s: int = Field(default=3600, ge=300)
