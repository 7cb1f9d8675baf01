"""SECRETS_ARNS through a real Secrets Manager API: the local stack's moto server (the one
that serves SQS answers Secrets Manager on the same endpoint), reached through boto3's own
AWS_ENDPOINT_URL_SECRETS_MANAGER, as a deployed function reaches AWS's."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from shared.platform import secret_sources
from shared.platform.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def secrets_manager(local_stack, settings: Settings, monkeypatch: pytest.MonkeyPatch):
    if "sqs" not in settings.local_services:
        pytest.skip("the SQS endpoint is not the local moto server")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", settings.sqs_endpoint or "")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    secret_sources.fetch_secrets.cache_clear()
    client = boto3.client("secretsmanager", region_name=settings.aws_region)
    made: list[str] = []
    yield client, made
    for arn in made:
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    secret_sources.fetch_secrets.cache_clear()


def test_settings_read_an_app_secret_and_an_rds_secret_from_the_server(
    secrets_manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, made = secrets_manager
    tag = uuid.uuid4().hex[:8]
    app = client.create_secret(
        Name=f"acs-test/{tag}/app",
        SecretString=json.dumps(
            {"AUTH_JWT_SECRET": f"jwt-{tag}-" + "0" * 32, "INFERENCE_TOKEN": f"token-{tag}"}
        ),
    )["ARN"]
    db = client.create_secret(
        Name=f"acs-test/{tag}/db",
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "host": "db.internal",
                "port": 5432,
                "username": "acs",
                "password": f"pw/{tag}",
                "dbname": "acs",
            }
        ),
    )["ARN"]
    made += [app, db]
    monkeypatch.delenv("INFERENCE_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    monkeypatch.setenv("SECRETS_ARNS", f"{app},{db}")
    settings = Settings(_env_file=None)
    assert settings.auth_jwt_secret.get_secret_value() == f"jwt-{tag}-" + "0" * 32
    assert settings.inference_token.get_secret_value() == f"token-{tag}"
    assert settings.database_url == f"postgresql://acs:pw%2F{tag}@db.internal:5432/acs"
    assert tag not in repr(settings)
