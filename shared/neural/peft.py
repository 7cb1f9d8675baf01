"""LoRA adapters in PEFT's on-disk format: `adapter_config.json` and `adapter_model.safetensors`
with PEFT's tensor names, so an adapter trained here loads in PEFT, vLLM or LoRAX on the
original SmolLM2 weights, and one trained there loads here (DESIGN.md §3).

The checksum covers both files (names, lengths and bytes); it is recorded in the adapter's
artifact version and checked before an adapter is activated.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from shared.neural.config import LlamaConfig
from shared.neural.lora import TARGETS, AdapterError, LoraWeights

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
MAX_FILE_BYTES = 256 * 1024 * 1024
_NAME = re.compile(
    r"base_model\.model\.model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.lora_([AB])\.weight"
)


def tensor_name(layer: int, target: str, matrix: str) -> str:
    return f"base_model.model.model.layers.{layer}.self_attn.{target}_proj.lora_{matrix}.weight"


def adapter_config(weights: LoraWeights) -> dict[str, Any]:
    """The fields PEFT's LoraConfig writes for a plain LoRA on a causal LM."""
    targets = sorted({f"{target}_proj" for _, target in weights.tensors})
    return {
        "alpha_pattern": {},
        "auto_mapping": None,
        "base_model_name_or_path": BASE_MODEL,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "layers_pattern": None,
        "layers_to_transform": None,
        "lora_alpha": weights.alpha,
        "lora_dropout": 0.0,
        "modules_to_save": None,
        "peft_type": "LORA",
        "r": weights.rank,
        "rank_pattern": {},
        "revision": None,
        "target_modules": targets,
        "task_type": "CAUSAL_LM",
        "use_dora": False,
        "use_rslora": False,
    }


def dump(weights: LoraWeights) -> dict[str, bytes]:
    """The two files of an adapter, as bytes."""
    tensors = {}
    for (layer, target), (a, b) in sorted(weights.tensors.items()):
        tensors[tensor_name(layer, target, "A")] = np.ascontiguousarray(a, np.float32)
        tensors[tensor_name(layer, target, "B")] = np.ascontiguousarray(b, np.float32)
    config = json.dumps(adapter_config(weights), indent=2, sort_keys=True).encode()
    return {CONFIG_FILE: config, WEIGHTS_FILE: save_safetensors(tensors)}


def checksum(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        data = files[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return "sha256:" + digest.hexdigest()


def dump_with_checksum(weights: LoraWeights) -> tuple[dict[str, bytes], str]:
    """The two files and their checksum: what the adapter registry's `AdapterFiles` holds."""
    files = dump(weights)
    return files, checksum(files)


def parse(files: dict[str, bytes], config: LlamaConfig, *, max_rank: int) -> LoraWeights:
    """An adapter from its two files, validated against the base model (targets, shapes,
    rank, finite float values); refuses what it cannot use with an `AdapterError`."""
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if name not in files]
    if missing:
        raise AdapterError(f"adapter files missing: {', '.join(missing)}")
    if any(len(data) > MAX_FILE_BYTES for data in files.values()):
        raise AdapterError("adapter file too large")
    settings = _parse_config(files[CONFIG_FILE])
    try:
        raw = load_safetensors(files[WEIGHTS_FILE])
    except (SafetensorError, ValueError) as exc:
        raise AdapterError(f"unreadable {WEIGHTS_FILE}: {exc}") from exc
    pairs: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for name, tensor in raw.items():
        match = _NAME.fullmatch(name)
        if match is None:
            raise AdapterError(f"unexpected tensor {name!r} (only q/k/v/o LoRA A and B)")
        if tensor.dtype not in (np.float32, np.float16):
            raise AdapterError(f"tensor {name!r} has dtype {tensor.dtype}")
        layer, target, matrix = int(match[1]), match[2], match[3]
        pairs.setdefault((layer, target), {})[matrix] = tensor.astype(np.float32)
    if not pairs:
        raise AdapterError("the adapter has no LoRA tensors")
    tensors = {}
    for key, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise AdapterError(f"layer {key[0]} {key[1]}_proj lacks lora_A or lora_B")
        tensors[key] = (pair["A"], pair["B"])
    weights = LoraWeights(rank=settings["r"], alpha=float(settings["lora_alpha"]), tensors=tensors)
    weights.validate(config, max_rank=max_rank)
    return weights


def _parse_config(data: bytes) -> dict[str, Any]:
    try:
        settings = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"unreadable {CONFIG_FILE}: {exc}") from exc
    if not isinstance(settings, dict) or settings.get("peft_type") != "LORA":
        raise AdapterError(f"{CONFIG_FILE} is not a LoRA config")
    if not isinstance(settings.get("r"), int) or not isinstance(
        settings.get("lora_alpha"), int | float
    ):
        raise AdapterError(f"{CONFIG_FILE} needs integer r and numeric lora_alpha")
    unsupported = [
        key
        for key in ("use_dora", "use_rslora", "fan_in_fan_out")
        if settings.get(key) not in (None, False)
    ]
    if settings.get("rank_pattern") or settings.get("alpha_pattern"):
        unsupported.append("rank_pattern/alpha_pattern")
    if settings.get("bias", "none") != "none" or settings.get("modules_to_save"):
        unsupported.append("bias/modules_to_save")
    if unsupported:
        raise AdapterError(f"unsupported LoRA options: {', '.join(unsupported)}")
    modules = settings.get("target_modules") or []
    if isinstance(modules, str) or any(m not in {f"{t}_proj" for t in TARGETS} for m in modules):
        raise AdapterError(f"target_modules must be among q/k/v/o_proj, got {modules!r}")
    return settings
