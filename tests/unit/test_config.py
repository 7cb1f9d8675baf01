from __future__ import annotations

import pytest

from shared.platform.settings import Settings

# Real values for the secrets that have placeholders, but the ones a test leaves out.
_PROD_BASE = {
    "env": "prod",
    "database_url": "postgresql://u:p@db/app",
    "pg_password": "s3cret-db",
    "aws_secret_access_key": "real-secret",
    "inference_token": "real-token",
    "_env_file": None,
}


def test_placeholder_secrets_are_refused_outside_dev() -> None:
    with pytest.raises(ValueError, match="PG_PASSWORD"):
        Settings(env="prod", database_url="postgresql://db/app", _env_file=None)


def test_the_dev_jwt_signing_key_is_refused_outside_dev() -> None:
    with pytest.raises(ValueError, match="AUTH_JWT_SECRET"):
        Settings(**_PROD_BASE)


def test_prod_with_real_secrets_is_accepted_and_starts_nothing_locally() -> None:
    settings = Settings(
        **_PROD_BASE,
        auth_jwt_secret="a-real-signing-key-of-32-bytes-or-more",
        auth_encryption_key="another-real-key-for-data-at-rest",
        smtp_host="smtp.example.com",
    )
    assert settings.local_services == []
    assert settings.s3_endpoint is None  # boto3's default: real AWS


def test_a_given_url_means_that_server_is_not_started() -> None:
    settings = Settings(
        env="dev",
        database_url="postgresql://u:p@elsewhere/app",
        redis_url="redis://elsewhere:6379/0",
        _env_file=None,
    )
    assert settings.local_services == ["seaweedfs", "sqs", "mailsink"]
    assert settings.postgres_dsn == "postgresql://u:p@elsewhere/app"


def test_secrets_do_not_appear_in_repr() -> None:
    settings = Settings(env="dev", pg_password="very-secret-pw", _env_file=None)
    assert "very-secret-pw" not in repr(settings)


def test_the_dev_encryption_key_and_a_missing_smtp_host_are_refused_outside_dev() -> None:
    with pytest.raises(ValueError, match=r"AUTH_ENCRYPTION_KEY.*SMTP_HOST"):
        Settings(**_PROD_BASE, auth_jwt_secret="a-real-signing-key-of-32-bytes-or-more")


def test_the_dev_voice_token_is_refused_once_a_voice_service_is_configured() -> None:
    real = {**_PROD_BASE, "auth_jwt_secret": "a-real-signing-key-of-32-bytes-or-more",
            "auth_encryption_key": "another-real-key-for-data-at-rest",
            "smtp_host": "smtp.example.com"}  # fmt: skip
    assert Settings(**real).voice_url is None  # voice is optional: no token needed without it
    with pytest.raises(ValueError, match="VOICE_TOKEN"):
        Settings(**real, voice_url="https://voice.internal")
    assert Settings(**real, voice_url="https://voice.internal", voice_token="real-voice-token")
