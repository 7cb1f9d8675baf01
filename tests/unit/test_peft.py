"""PEFT-format adapters: checksums, and refusing files that cannot be used (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

from shared.neural.config import LlamaConfig
from shared.neural.lora import AdapterError, LoraWeights, random_lora
from shared.neural.peft import CONFIG_FILE, WEIGHTS_FILE, checksum, dump, parse, tensor_name

CONFIG = LlamaConfig()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return dump(random_lora(CONFIG, rank=4, alpha=8, seed=3))


def test_round_trip_and_checksum(files) -> None:
    weights = parse(files, CONFIG, max_rank=16)
    assert weights.rank == 4 and weights.alpha == 8 and len(weights.tensors) == 4 * 30
    assert checksum(files) == checksum(dict(files))
    assert checksum(files).startswith("sha256:")
    flipped = bytearray(files[WEIGHTS_FILE])
    flipped[-1] ^= 1
    assert checksum({**files, WEIGHTS_FILE: bytes(flipped)}) != checksum(files)
    config = json.loads(files[CONFIG_FILE])
    config["lora_alpha"] = 16
    assert checksum({**files, CONFIG_FILE: json.dumps(config).encode()}) != checksum(files)


def _with_config(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    config = json.loads(files[CONFIG_FILE])
    config.update(changes)
    return {**files, CONFIG_FILE: json.dumps(config).encode()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"peft_type": "IA3"}, "not a LoRA config"),
        ({"use_dora": True}, "unsupported"),
        ({"r": 32}, "does not match|rank"),
        ({"target_modules": ["gate_proj"]}, "target_modules"),
        ({"lora_alpha": "eight"}, "lora_alpha"),
    ],
)
def test_bad_configs_are_refused(files, change, message) -> None:
    with pytest.raises(AdapterError, match=message):
        parse(_with_config(files, **change), CONFIG, max_rank=16)


def test_bad_weights_are_refused(files) -> None:
    with pytest.raises(AdapterError, match="unreadable"):
        parse({**files, WEIGHTS_FILE: files[WEIGHTS_FILE][:-100]}, CONFIG, max_rank=16)
    with pytest.raises(AdapterError, match="missing"):
        parse({CONFIG_FILE: files[CONFIG_FILE]}, CONFIG, max_rank=16)
    a = np.zeros((4, 576), np.float32)
    cases = {
        "unexpected tensor": {"model.embed_tokens.weight": a},
        "lacks lora_A or lora_B": {tensor_name(0, "q", "A"): a},
        "expected": {
            tensor_name(0, "q", "A"): a,
            tensor_name(0, "q", "B"): np.zeros((5, 4), np.float32),
        },
        "non-finite": {
            tensor_name(0, "q", "A"): np.full((4, 576), np.nan, np.float32),
            tensor_name(0, "q", "B"): np.zeros((576, 4), np.float32),
        },
        "no LoRA target": {
            tensor_name(30, "q", "A"): a,
            tensor_name(30, "q", "B"): np.zeros((576, 4), np.float32),
        },
        "dtype": {tensor_name(0, "q", "A"): a.astype(np.int32), tensor_name(0, "q", "B"): a.T},
    }
    for message, tensors in cases.items():
        with pytest.raises(AdapterError, match=message):
            parse({**files, WEIGHTS_FILE: save_safetensors(tensors)}, CONFIG, max_rank=16)


def test_rank_above_the_bank_is_refused(files) -> None:
    with pytest.raises(AdapterError, match="rank"):
        parse(files, CONFIG, max_rank=2)
    with pytest.raises(AdapterError, match="alpha"):
        LoraWeights(rank=4, alpha=-1.0, tensors={}).validate(CONFIG, max_rank=16)
