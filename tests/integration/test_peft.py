"""Adapters in PEFT's own format: one written by PEFT (tests/reference/make_peft_reference.py)
loads here and gives PEFT's logits; one written here has PEFT's tensor names and config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors

from shared.neural.convert import ensure_weights
from shared.neural.lora import LoraBank, gather, install, pack
from shared.neural.model import KVCache, build_model
from shared.neural.peft import CONFIG_FILE, WEIGHTS_FILE, adapter_config, dump, parse
from shared.neural.runner import step_fn
from shared.neural.weights import load_checkpoint

REFERENCE = Path(__file__).resolve().parent.parent / "reference"
# f32 on both sides, as for the base model's reference logits.
LOGIT_TOLERANCE = 1e-3


def _peft_files() -> dict[str, bytes]:
    return {
        name: (REFERENCE / "peft_adapter" / name).read_bytes()
        for name in (CONFIG_FILE, WEIGHTS_FILE)
    }


def test_an_adapter_written_by_peft_gives_peft_logits(settings) -> None:
    checkpoint = load_checkpoint(ensure_weights(settings.weights_dir))
    config = checkpoint.config
    weights = parse(_peft_files(), config, max_rank=16)
    assert weights.rank == 4 and weights.alpha == 8
    assert {layer for layer, _ in weights.tensors} == {0, 1}
    reference = dict(np.load(REFERENCE / "peft_reference.npz"))
    ids = reference["ids"].tolist()
    width = 64
    tokens = np.zeros((1, width), np.int32)
    tokens[0, : len(ids)] = ids
    positions = np.arange(width, dtype=np.int32)[None]
    bank = install(
        LoraBank.zeros(config, slots=2, rank=8), np.int32(1), pack(weights, config, rank=8)
    )
    lora = gather(bank, np.array([[1]], np.int32), np.array([[1.0]], np.float32))
    state, step = step_fn(build_model(config, checkpoint.tensors))
    last = np.array([len(ids) - 1], np.int32)
    logits, _, _ = step(
        state,
        tokens,
        positions,
        KVCache.zeros(config, batch=1, length=width),
        None,
        last,
        lora,
        attend_len=width,
    )
    ours = np.asarray(logits)[0][reference["top_ids"]]
    assert np.abs(ours - reference["top_logits"]).max() < LOGIT_TOLERANCE
    # The adapter matters: PEFT's adapted logits are far from the base model's.
    assert np.abs(reference["top_logits"] - reference["base_top_logits"]).max() > 1.0


def test_an_adapter_written_here_has_peft_names_and_config(settings) -> None:
    config = load_checkpoint(ensure_weights(settings.weights_dir)).config
    peft_files = _peft_files()
    weights = parse(peft_files, config, max_rank=16)
    ours = dump(weights)
    theirs_tensors = load_safetensors(peft_files[WEIGHTS_FILE])
    ours_tensors = load_safetensors(ours[WEIGHTS_FILE])
    assert {k: v.shape for k, v in ours_tensors.items()} == {
        k: v.shape for k, v in theirs_tensors.items()
    }
    for name, tensor in theirs_tensors.items():
        np.testing.assert_array_equal(ours_tensors[name], tensor)
    theirs_config = json.loads(peft_files[CONFIG_FILE])
    our_config = json.loads(ours[CONFIG_FILE])
    assert set(our_config) <= set(theirs_config)  # every key we write is one PEFT writes
    for key in ("peft_type", "r", "lora_alpha", "lora_dropout", "bias", "task_type", "use_dora"):
        assert our_config[key] == theirs_config[key], key
    assert sorted(our_config["target_modules"]) == sorted(theirs_config["target_modules"])
    assert (
        adapter_config(weights)["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    # And it reads back to the same weights.
    again = parse(ours, config, max_rank=16)
    assert again.tensors.keys() == weights.tensors.keys()
