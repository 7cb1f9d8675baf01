"""Test session set-up: the real local stack (Postgres+pgvector, Valkey, SeaweedFS S3, moto SQS).

A stack that is already running (say `make run`) is reused; otherwise the session starts one
and stops it at the end. Each session gets its own database, queue and bucket names, so it
never touches a developer's data.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator

import pytest

_SESSION = secrets.token_hex(3)
os.environ.setdefault("ENV", "test")
os.environ["STACK_NAME"] = f"acs-t{_SESSION}"
os.environ["PG_DATABASE"] = f"acs_test_{_SESSION}"
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# OIDC login against the fake provider of tests/integration/test_oidc.py, on a port fixed now
# because settings are read once per process.
os.environ["OIDC_ISSUER"] = f"http://127.0.0.1:{_free_port()}"
os.environ["OIDC_CLIENT_ID"] = "acs-test-client"
os.environ["OIDC_CLIENT_SECRET"] = "acs-test-client-secret"
# The train function's own host (Metadata.LocalHost "train"): a port of this session, so the
# dispatchers tests start never reach a developer's `make run` (tests that train start one).
os.environ["FUNCTIONS_HOST_PORTS"] = f'{{"train": {_free_port()}}}'
# Compiled XLA programs are cached across sessions (the model's shapes compile once).
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".data", "jax-cache")
)

from infra import stack  # noqa: E402
from infra.stack.postgres import LocalPostgres  # noqa: E402
from shared.platform.db.migrate import migrate  # noqa: E402
from shared.platform.settings import Settings, get_settings  # noqa: E402


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def local_stack(settings: Settings):
    state = stack.up(settings)
    yield state
    if "postgres" in settings.local_services:
        LocalPostgres(settings).drop_database(settings.pg_database)
    _delete_session_resources(settings)
    if state.started:
        stack.down(settings, only=state.started)


def _delete_session_resources(settings: Settings) -> None:
    from infra.stack.provision import delete_bucket
    from shared.platform.aws import s3_client, sqs_client

    sqs = sqs_client(settings)
    for url in sqs.list_queues(QueueNamePrefix=settings.stack_name).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
    s3 = s3_client(settings)
    for bucket in s3.list_buckets().get("Buckets", []):
        if bucket["Name"].startswith(settings.stack_name):
            delete_bucket(s3, bucket["Name"])


@pytest.fixture(scope="session")
def migrated(local_stack, settings: Settings) -> str:
    migrate(settings.postgres_dsn)
    return settings.postgres_dsn


@pytest.fixture(scope="session")
def service(tmp_path_factory, migrated) -> Iterator[str]:
    """The inference service of the session (its base URL; bearer `tests.inference.TOKEN`),
    with an adapter bank: one process shared by the integration and the browser tests."""
    from tests.inference import start_inference, wait_inference_ready

    url, process = start_inference(tmp_path_factory, "inference", adapters=True)
    with process:
        wait_inference_ready(url)
        yield url


@pytest.fixture(scope="session")
def voice_service(tmp_path_factory) -> Iterator[str]:
    """The voice service of the session (its base URL; bearer `tests.voice.TOKEN`): Whisper
    base and Piper's joe voice, the real models, shared by the integration and browser tests."""
    from tests.voice import start_voice, wait_voice_ready

    url, process = start_voice(tmp_path_factory)
    with process:
        wait_voice_ready(url)
        yield url
