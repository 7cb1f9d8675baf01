"""The train function's decisions that need no store: which failures are worth a retry, the
gate a persona is trained at (its routing policy's weight; a skill's: the configured gate), the
run's config (the backend's defaults, the settings that are set, the job's step budget, the
served version's rank), the router centroid's moving average, the files a version may have,
and where the train function runs locally (a host of its own, never the shared internal
host)."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import botocore.exceptions
import numpy as np
import psycopg
import pytest
from pgvector import Vector

from functions.train.job import gate_of, persona_weight, training_config, transient
from infra.gateway.app import internal_app
from infra.run import dedicated_hosts
from shared.domain.adapters import objects
from shared.domain.adapters.router_state import moved_centroid
from shared.domain.preferences.jobs import Job
from shared.neural.config import LlamaConfig
from shared.neural.lora import random_lora
from shared.neural.training import TRAINING_CONFIG_FILE, TrainingDiverged
from shared.platform.errors import Conflict
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import load_template

SETTINGS = Settings(_env_file=None)
JOB = Job(id="j", user_id="u", adapter_id="a", status="running", attempt=1, max_attempts=3,
          step_budget=12, priority=1, preference_event_ids=(), instructions=(), base_version=1,
          base_has_weights=False, meta={})  # fmt: skip


def _client_error(status: int, code: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject"
    )


def test_store_outages_are_transient_and_a_diverged_run_or_bad_data_are_not() -> None:
    for retry in (
        psycopg.OperationalError("connection refused"),
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3"),
        _client_error(503, "ServiceUnavailable"),
        _client_error(400, "SlowDown"),
        Conflict("adapter changed while publishing"),
        ConnectionResetError(),
        MemoryError(),
    ):
        assert transient(retry), retry
    for permanent in (
        TrainingDiverged("the loss is nan at step 3"),
        ValueError("no training samples"),
        _client_error(403, "AccessDenied"),
        KeyError("fs_dir"),
    ):
        assert not transient(permanent), permanent


def _by_type(adapter_type: str, weight: object) -> dict:
    return {"action": {"type": "activate_adapter_by_type", "adapter_type": adapter_type,
                       "weight": weight}}  # fmt: skip


def test_the_persona_is_trained_at_the_weight_its_routing_policy_serves_it_at() -> None:
    nearest = {"action": {"type": "activate_adapter_by_cluster", "cluster_id": "closest",
                          "weight": "similarity"}}  # fmt: skip
    assert persona_weight({"rules": [_by_type("persona", 0.5), nearest]}) == 0.5  # the seed's
    assert persona_weight({"rules": [_by_type("persona", 3)]}) == 1.0  # clamped, as served
    assert persona_weight({"rules": [_by_type("persona", "similarity")]}) is None  # per turn
    assert persona_weight({"rules": [_by_type("skill", 0.9)]}) is None
    assert persona_weight({}) is None


def test_the_run_takes_the_backends_defaults_the_settings_set_and_the_jobs_budget() -> None:
    cpu = training_config(SETTINGS, JOB, gate=0.5, init=None, backend="cpu")
    assert (cpu.max_tokens, cpu.batch_size, cpu.epochs, cpu.rank) == (256, 8, 2, 8)
    assert (cpu.max_steps, cpu.gate, cpu.time_budget_s) == (12, 0.5, 600.0)
    gpu = training_config(SETTINGS, JOB, gate=0.5, init=None, backend="gpu")
    assert (gpu.max_tokens, gpu.batch_size, gpu.max_steps) == (1024, 16, 12)
    small = SETTINGS.model_copy(update={"training_max_tokens": 64, "training_batch_size": 3,
                                        "training_learning_rate": 1e-3})  # fmt: skip
    served = random_lora(LlamaConfig(), rank=4, alpha=8, seed=0, scale=0.1)
    continued = training_config(small, JOB, gate=0.7, init=served, backend="gpu")
    assert (continued.max_tokens, continued.batch_size, continued.learning_rate) == (64, 3, 1e-3)
    assert (continued.rank, continued.alpha, continued.gate) == (4, 8.0, 0.7)


async def test_a_skill_trains_at_the_configured_gate_with_the_same_config() -> None:
    # The routing policy weighs a skill per turn (by similarity): no policy is read (no
    # connection needed), the configured gate is the skill's.
    skill_job = replace(JOB, user_id=None, kind="skill", cluster_ids=("c",))
    gated = SETTINGS.model_copy(update={"training_gate": 0.25})
    assert await gate_of(None, skill_job, gated) == 0.25
    # Otherwise its run is configured as a persona job's with the same budget.
    for backend in ("cpu", "gpu"):
        assert training_config(SETTINGS, skill_job, gate=0.5, init=None, backend=backend) == (
            training_config(SETTINGS, JOB, gate=0.5, init=None, backend=backend))  # fmt: skip


def test_the_centroid_moves_part_of_the_way_toward_a_jobs_contexts() -> None:
    x, y = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    assert moved_centroid(None, [], ema=0.3) is None
    first = moved_centroid(None, [Vector(x), Vector(y)], ema=0.3)  # pgvector's type, or lists
    assert first == pytest.approx([math.sqrt(0.5), math.sqrt(0.5), 0.0])
    moved = moved_centroid(x, [y], ema=0.25)
    assert moved is not None
    assert np.linalg.norm(moved) == pytest.approx(1.0)
    assert moved == pytest.approx(np.array([0.75, 0.25, 0.0]) / math.hypot(0.75, 0.25))


class _Recorder:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> None:
        self.keys.append(Key)


def test_a_version_stores_its_peft_files_and_its_training_config_and_nothing_else() -> None:
    assert objects.TRAINING_CONFIG_FILE == TRAINING_CONFIG_FILE  # the model package's name
    s3 = _Recorder()
    files = {objects.CONFIG_FILE: b"{}", objects.WEIGHTS_FILE: b"w", TRAINING_CONFIG_FILE: b"{}"}
    objects.put_version(s3, "b", "p/", files)
    assert s3.keys == ["p/adapter_config.json", "p/adapter_model.safetensors",
                       "p/training_config.json"]  # fmt: skip
    with pytest.raises(ValueError, match="missing"):
        objects.put_version(s3, "b", "p/", {objects.CONFIG_FILE: b"{}"})
    with pytest.raises(ValueError, match="unknown"):
        objects.put_version(s3, "b", "p/", {**files, "notes.txt": b""})
    owner, adapter, job = (
        "8f1e2c4a-0000-4000-8000-000000000001",
        "8f1e2c4a-0000-4000-8000-000000000002",
        "8f1e2c4a-0000-4000-8000-000000000003",
    )
    assert objects.job_prefix(owner, adapter, job) == (
        f"users/{owner}/adapters/{adapter}/train_jobs/{job}/")  # fmt: skip
    with pytest.raises(ValueError):
        objects.job_prefix(owner, adapter, "../../x")


def test_the_train_function_has_a_local_host_of_its_own() -> None:
    template = load_template(REPO_ROOT / "template.yaml", SETTINGS)
    hosted = {s.logical_id: s.local_host for s in template.functions.values() if s.local_host}
    assert hosted == {"TrainFunction": "train"}
    assert Settings.model_fields["functions_host_ports"].default_factory() == {"train": 8082}  # type: ignore[call-arg,misc]
    port = SETTINGS.functions_host_ports["train"]  # the session's own (tests/conftest.py)
    assert SETTINGS.function_host_url("train") == f"http://127.0.0.1:{port}"
    assert SETTINGS.function_host_url(None) == SETTINGS.internal_functions_url
    with pytest.raises(ValueError, match="FUNCTIONS_HOST_PORTS"):
        SETTINGS.function_host_url("gpu")
    # The shared internal host never serves it (a job would block every queue function
    # there); `--only` serves it alone, and nothing else that way.
    shared = internal_app(SETTINGS, template=template)
    assert "TrainFunction" not in shared.apps and "MailerFunction" in shared.apps  # type: ignore[attr-defined]
    alone = internal_app(SETTINGS, template=template, only="TrainFunction")
    assert list(alone.apps) == ["TrainFunction"]  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        internal_app(SETTINGS, template=template, only="MailerFunction")


def test_make_run_starts_the_train_host_beside_the_shared_one() -> None:
    assert dedicated_hosts(SETTINGS) == {
        "functions-train": [sys.executable, "-m", "infra.gateway", "--internal", "--only",
                            "TrainFunction"]}  # fmt: skip


def test_the_container_image_bakes_the_weights_where_the_function_reads_them() -> None:
    dockerfile = (REPO_ROOT / "functions" / "train" / "Dockerfile").read_text()
    raw = (REPO_ROOT / "template.yaml").read_text()
    assert "WEIGHTS_DIR=/opt/models/smollm2-135m-instruct" in dockerfile
    assert "WEIGHTS_DIR: /opt/models/smollm2-135m-instruct" in raw
    assert Path(REPO_ROOT / "run.sh").exists() and 'CMD ["sh", "run.sh"]' in dockerfile
