"""Secrets from a file and from Secrets Manager (shared/platform/secret_sources.py): who may
read the file, what wins over what, RDS's format, and that no value reaches a repr or an
error message. Secrets Manager runs in moto's in-process mock here; the local stack's moto
server is tests/integration/test_secret_sources.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from shared.platform import secret_sources
from shared.platform.secret_sources import (
    SecretsError,
    load_secrets,
    rds_database_url,
    read_secrets_file,
    secret_settings,
)
from shared.platform.settings import Settings

JWT = "a-jwt-key-from-the-secrets-file-000000"


def _secrets_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "secrets.env"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SECRETS_FILE",
        "SECRETS_ARNS",
        "AUTH_JWT_SECRET",
        "DATABASE_URL",
        "INFERENCE_TOKEN",
        "PG_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    secret_sources.fetch_secrets.cache_clear()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_a_file_that_group_or_others_may_open_is_refused(tmp_path: Path, mode: int) -> None:
    path = _secrets_file(tmp_path, f"AUTH_JWT_SECRET={JWT}\n", mode)
    with pytest.raises(SecretsError, match="chmod 600") as caught:
        read_secrets_file(path)
    assert JWT not in str(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_file_is_read(tmp_path: Path, mode: int) -> None:
    path = _secrets_file(
        tmp_path, f"AUTH_JWT_SECRET={JWT}\nINFERENCE_TOKEN='quoted $value'\n", mode
    )
    assert read_secrets_file(path) == {"AUTH_JWT_SECRET": JWT, "INFERENCE_TOKEN": "quoted $value"}


def test_a_file_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _secrets_file(tmp_path, f"AUTH_JWT_SECRET={JWT}\n")
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)
    with pytest.raises(SecretsError, match="not by this process's user"):
        read_secrets_file(path)


def test_a_missing_file_or_a_key_without_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="No such file"):
        read_secrets_file(tmp_path / "absent.env")
    with pytest.raises(SecretsError, match="no value for INFERENCE_TOKEN"):
        read_secrets_file(_secrets_file(tmp_path, "INFERENCE_TOKEN\n"))


def test_settings_take_the_file_below_the_environment_and_above_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _secrets_file(
        tmp_path,
        f"AUTH_JWT_SECRET={JWT}\nINFERENCE_TOKEN=from-file\nDATABASE_URL=postgresql://f:pw-from-file@db/app\n",
    )
    monkeypatch.setenv("SECRETS_FILE", str(path))
    monkeypatch.setenv("INFERENCE_TOKEN", "from-env")
    settings = Settings(_env_file=None)
    assert settings.auth_jwt_secret.get_secret_value() == JWT  # file over the default
    assert settings.inference_token.get_secret_value() == "from-env"  # environment over file
    assert settings.postgres_dsn == "postgresql://f:pw-from-file@db/app"
    assert settings.pg_port == 5433  # a default nobody set
    shown = repr(settings)
    assert JWT not in shown and "pw-from-file" not in shown and "from-env" not in shown


def test_an_unreadable_secrets_file_stops_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETS_FILE", str(_secrets_file(tmp_path, "X=1\n", 0o644)))
    with pytest.raises(SecretsError):
        Settings(_env_file=None)


def test_an_rds_secret_becomes_database_url_with_its_password_encoded() -> None:
    secret = {
        "engine": "postgres",
        "host": "db.internal",
        "port": 5432,
        "username": "app",
        "password": "p@ss:w/rd",
        "dbname": "adaptive_chat",
        "dbInstanceIdentifier": "x",
    }
    assert secret_settings("arn:db", json.dumps(secret)) == {
        "DATABASE_URL": "postgresql://app:p%40ss%3Aw%2Frd@db.internal:5432/adaptive_chat"
    }
    assert rds_database_url({"host": "h", "username": "u", "password": "p"}) == (
        "postgresql://u:p@h:5432/postgres"
    )


def test_a_secret_must_be_a_json_object_and_its_value_stays_out_of_the_error() -> None:
    with pytest.raises(SecretsError, match="not a JSON object") as caught:
        secret_settings("arn:x", "plain-secret-text")
    assert "plain-secret-text" not in str(caught.value)
    with pytest.raises(SecretsError, match="no SecretString"):
        secret_settings("arn:x", None)
    assert secret_settings(
        "arn:x", '{"AUTH_JWT_PREVIOUS_KEYS": {"k0": "old"}, "SMTP_STARTTLS": false}'
    ) == {"AUTH_JWT_PREVIOUS_KEYS": '{"k0": "old"}', "SMTP_STARTTLS": "false"}


@mock_aws
def test_secrets_manager_values_fill_settings_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    app = client.create_secret(
        Name="acs/app",
        SecretString=json.dumps(
            {
                "AUTH_JWT_SECRET": JWT,
                "INFERENCE_TOKEN": "from-sm",
                "AUTH_JWT_PREVIOUS_KEYS": {"k0": "old-key"},
            }
        ),
    )["ARN"]
    db = client.create_secret(
        Name="acs/db",
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "host": "rds.internal",
                "port": 5432,
                "username": "acs",
                "password": "sm-db-password",
                "dbname": "adaptive_chat",
            }
        ),
    )["ARN"]
    # A file says something else: the managed secret wins over it, the environment over both.
    path = _secrets_file(tmp_path, "INFERENCE_TOKEN=from-file\nPG_PASSWORD=file-pg\n")
    monkeypatch.setenv("SECRETS_FILE", str(path))
    monkeypatch.setenv("SECRETS_ARNS", f"{app}, {db}")
    monkeypatch.setenv("AUTH_JWT_SECRET", "the-environment-wins-over-secrets-00000")
    settings = Settings(_env_file=None)
    assert settings.auth_jwt_secret.get_secret_value() == "the-environment-wins-over-secrets-00000"
    assert settings.inference_token.get_secret_value() == "from-sm"
    assert settings.pg_password.get_secret_value() == "file-pg"
    assert (
        settings.database_url == "postgresql://acs:sm-db-password@rds.internal:5432/adaptive_chat"
    )
    assert settings.auth_jwt_previous_keys["k0"].get_secret_value() == "old-key"
    assert "sm-db-password" not in repr(settings) and "from-sm" not in repr(settings)


@mock_aws
def test_secrets_are_fetched_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="acs/once", SecretString='{"INFERENCE_TOKEN": "v1"}')["ARN"]
    environ = {"SECRETS_ARNS": arn}
    assert load_secrets(environ) == {"INFERENCE_TOKEN": "v1"}
    client.put_secret_value(SecretId=arn, SecretString='{"INFERENCE_TOKEN": "v2"}')
    assert load_secrets(environ) == {"INFERENCE_TOKEN": "v1"}  # read at start, not per use


@mock_aws
def test_a_missing_secret_names_its_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:acs/absent-AbCdEf"
    with pytest.raises(SecretsError, match="acs/absent"):
        load_secrets({"SECRETS_ARNS": arn})
