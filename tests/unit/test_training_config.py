"""The training config: JSON round trip, refusals, defaults by backend, saved beside the PEFT
files without getting in their way (no model needed)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from shared.neural import peft
from shared.neural.config import LlamaConfig
from shared.neural.lora import random_lora
from shared.neural.training.config import (
    TRAINING_CONFIG_FILE,
    TrainingConfig,
    version_files,
)

TINY = LlamaConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)


def test_json_round_trip_keeps_every_field() -> None:
    config = TrainingConfig(
        rank=4,
        alpha=8.0,
        gate=0.7,
        learning_rate=1e-3,
        epochs=3,
        max_steps=10,
        batch_size=4,
        max_tokens=128,
        l2=0.0,
        kto_beta=0.2,
        desirable_weight=1.5,
        undesirable_weight=0.5,
        patience=3,
        min_delta=0.01,
        check_every=2,
        seed=42,
        time_budget_s=600.0,
    )
    text = config.to_json()
    assert TrainingConfig.from_json(text) == config
    assert TrainingConfig.from_json(text.encode()) == config
    assert set(json.loads(text)) == {f.name for f in dataclasses.fields(config)} | {"format"}
    assert TrainingConfig.from_json(TrainingConfig().to_json()) == TrainingConfig()


def _document(**changes) -> str:
    data = json.loads(TrainingConfig().to_json())
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "something/2"}, "not a"),
        ({"dropout": 0.1}, "unknown training config fields: dropout"),
        ({"rank": 8.5}, "rank must be an integer"),
        ({"rank": True}, "rank must be a number"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"gate": 0}, "gate"),
        ({"rank": 0}, "rank"),
        ({"kto_beta": -1}, "kto_beta"),
        ({"time_budget_s": 0}, "time_budget_s"),
    ],
)
def test_from_json_refuses_what_it_cannot_trust(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingConfig.from_json(_document(**changes))


def test_a_missing_field_takes_its_default_and_float_fields_take_integers() -> None:
    data = json.loads(TrainingConfig().to_json())
    del data["l2"]
    data["alpha"] = 32
    config = TrainingConfig.from_json(json.dumps(data))
    assert config.l2 == TrainingConfig().l2 and config.alpha == 32


def test_invalid_values_are_refused_on_construction() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        TrainingConfig(max_tokens=8)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingConfig(learning_rate=float("nan"))


def test_cpu_defaults_cap_samples_and_passes_and_an_accelerator_lifts_the_caps() -> None:
    cpu = TrainingConfig.for_backend("cpu")
    assert cpu == TrainingConfig() and cpu.max_tokens == 256 and cpu.epochs <= 2
    gpu = TrainingConfig.for_backend("gpu", seed=3)
    assert gpu.max_tokens > cpu.max_tokens and gpu.epochs > cpu.epochs and gpu.seed == 3
    assert TrainingConfig.for_backend("gpu", max_tokens=512).max_tokens == 512


def test_continuing_takes_the_adapters_rank_and_alpha() -> None:
    weights = random_lora(TINY, rank=4, alpha=12, seed=0)
    config = TrainingConfig.continuing(weights, rank=16, seed=5)
    assert (config.rank, config.alpha, config.seed) == (4, 12, 5)


def test_version_files_carry_the_config_beside_peft_files_without_changing_them() -> None:
    weights = random_lora(TINY, rank=4, alpha=8, seed=1)
    config = TrainingConfig(rank=4, alpha=8.0, seed=9)
    files, checksum = version_files(weights, config)
    assert set(files) == {peft.CONFIG_FILE, peft.WEIGHTS_FILE, TRAINING_CONFIG_FILE}
    assert TrainingConfig.from_json(files[TRAINING_CONFIG_FILE]) == config
    # The checksum is PEFT's over its two files; the parser reads them and ignores the third.
    assert checksum == peft.checksum(files) == peft.dump_with_checksum(weights)[1]
    parsed = peft.parse(files, TINY, max_rank=8)
    assert parsed.rank == 4 and parsed.tensors.keys() == weights.tensors.keys()
