"""Fixtures for the model tests: the real converted SmolLM2 (loaded once per session),
adapters published to the session's bucket and database (the shared inference service is
the session's `service` fixture, tests/conftest.py), and the gateway's app in-process."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from shared.domain.adapters.registry import AdapterFiles, AdapterRecord, publish
from shared.neural import peft
from shared.neural.config import LlamaConfig
from shared.neural.convert import ensure_weights
from shared.neural.lora import LoraWeights, random_lora
from shared.neural.model import build_model, forward_fn
from shared.neural.tokenizer import ChatTokenizer
from shared.neural.weights import TOKENIZER_FILE, load_checkpoint
from shared.platform.aws import s3_client
from shared.platform.db.pool import create_pool
from shared.platform.template import load_template
from shared.services import Services
from tests.helpers import worker_processes, write_template_with_fixtures

# The inference service: its `service` fixture is the session's (tests/conftest.py), shared
# with the browser tests; these names stay importable from here.
from tests.inference import (  # noqa: F401
    ADAPTER_CACHE_MB,
    ADAPTER_SLOTS,
    QUEUE,
    SLOTS,
    TOKEN,
    start_inference,
    wait_inference_ready,
)


@pytest.fixture(scope="session")
def lm(settings):
    directory = ensure_weights(settings.weights_dir)
    checkpoint = load_checkpoint(directory)
    state, step = forward_fn(build_model(checkpoint.config, checkpoint.tensors))
    tokenizer = ChatTokenizer.from_file(directory / TOKENIZER_FILE)
    return checkpoint.config, state, step, tokenizer


# --- adapters published to the session's bucket and database, for the service to load --------
def adapter_weights(seed: int) -> LoraWeights:
    # Large enough to change a greedy answer; rank 4 keeps each adapter at 1.8 MB.
    return random_lora(LlamaConfig(), rank=4, alpha=8, seed=seed, scale=0.1)


class Adapters:
    def __init__(self, settings, pool) -> None:
        self.pool, self.s3 = pool, s3_client(settings)
        self.bucket = load_template(settings.template_path, settings).buckets["DataBucket"].name

    async def user(self) -> str:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text",
                (f"{uuid.uuid4().hex}@example.test",),
            )
            row = await cursor.fetchone()
        return row[0]

    async def publish(
        self, owner: str, seed: int, *, kind: str = "skill", adapter_id: str | None = None
    ) -> AdapterRecord:
        return await publish(
            self.pool,
            self.s3,
            self.bucket,
            AdapterFiles(*peft.dump_with_checksum(adapter_weights(seed))),
            owner_user_id=owner,
            name=f"adapter-{uuid.uuid4().hex[:8]}",
            adapter_id=adapter_id,
            adapter_type=kind,
        )


@pytest.fixture(scope="session")
async def adapters(settings, migrated):
    pool = create_pool(settings)
    await pool.open()
    yield Adapters(settings, pool)
    await pool.close()


def random_ip() -> str:
    return "10." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))


# --- the public API in-process, and the queue workers as real processes ----------------------
@pytest.fixture(scope="session")
async def services(migrated, settings):
    """This test process's services, as a function process has them (one per process)."""
    made = Services.from_settings(settings)
    yield made
    await made.aclose()


@pytest.fixture(scope="session")
async def model_services(migrated, settings, service):
    """Services whose LLM backend is this session's inference service (chat and tools tests);
    answers kept short."""
    model = settings.model_copy(
        update={"inference_url": service, "inference_token": SecretStr(TOKEN),
                "chat_max_tokens": 48}
    )  # fmt: skip
    made = Services.from_settings(model)
    yield made
    await made.aclose()


def gateway_client(settings, services) -> httpx.AsyncClient:
    """The gateway's public ASGI app (every HTTP function of template.yaml) in this process,
    with `services`, called from a client address of its own (per-IP budgets are not shared
    between tests)."""
    from infra.gateway.app import public_app

    app = public_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, client=(random_ip(), 50_000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@pytest.fixture
async def api(settings, services):
    async with gateway_client(settings, services) as client:
        yield client


@pytest.fixture(scope="module")
def workers(migrated, tmp_path_factory):
    """The internal function host and the dispatcher (queue polling + outbox relay), so queued
    work such as account mail really runs. Per module: a dispatcher left running would also
    relay other modules' outbox rows for queues its template lacks (the fixture queues)."""
    with worker_processes(tmp_path_factory.mktemp("workers")) as logs:
        yield logs


@pytest.fixture(scope="module")
def fixture_template(tmp_path_factory, settings) -> Path:
    """template.yaml plus the test-only functions and queues of tests/fixtures."""
    dest = tmp_path_factory.mktemp("template") / "template.yaml"
    return write_template_with_fixtures(settings.template_path, dest)


@pytest.fixture(scope="session")
def oidc_provider(settings):
    """The fake OpenID provider (tests/fixtures/oidc_provider.py) at OIDC_ISSUER."""
    from urllib.parse import urlsplit

    from tests.fixtures.oidc_provider import FakeProvider, ProviderServer

    fake = FakeProvider(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value(),
    )
    with ProviderServer(fake, urlsplit(settings.oidc_issuer).port):
        yield fake
