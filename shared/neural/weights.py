"""GGUF -> validated f32 checkpoint, and the loader that refuses anything it cannot trust.

Conversion dequantizes SmolLM2's GGUF (Q4_1/Q8_0/F32) with the `gguf` package, un-permutes the
Q and K rows (llama.cpp's converter interleaves each head's rotary halves; our RoPE rotates
halves as Hugging Face does), transposes to [in, out], fuses Q/K/V and gate/up, and writes one
safetensors file plus a manifest (config, tensor list, SHA-256) and the tokenizer.

The loader checks, before it maps a byte: the manifest, the safetensors header (size bound,
tensor count, names, dtypes, shapes, offsets inside the file, so a truncated file is caught),
and the file's SHA-256 against the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.neural.config import LlamaConfig

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
MAX_HEADER_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 4 << 30


class WeightsError(ValueError):
    """The weights (or their manifest) are missing, corrupt, truncated or the wrong shape."""


@dataclass(frozen=True)
class Checkpoint:
    config: LlamaConfig
    tensors: dict[str, np.ndarray]
    manifest: dict[str, Any]
    directory: Path


def sha256_file(path: Path, chunk: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- conversion ------------------------------------------------------------------------------


def unpermute_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's `permute`: per head, interleaved (x0, y0, x1, y1, ...) rows back to
    two halves (x0, x1, ..., y0, y1, ...). `weight` is [out, in] with out = n_heads * head_dim."""
    out = weight.shape[0]
    return (
        weight.reshape(n_heads, out // n_heads // 2, 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _gguf_metadata(reader: Any) -> dict[str, Any]:
    meta = {}
    for key, field in reader.fields.items():
        # A field whose type this gguf version cannot render is not one we need.
        with contextlib.suppress(Exception):
            meta[key] = field.contents()
    return meta


def convert_gguf(
    gguf_path: Path, out_dir: Path, *, progress: Callable[[str], None] | None = None
) -> Path:
    """Converts once into `out_dir` (written under a temporary name, then renamed, so a crash
    never leaves a half-written cache). Returns `out_dir`."""
    import gguf  # conversion-time only

    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    try:
        reader = gguf.GGUFReader(str(gguf_path))
    except Exception as exc:
        raise WeightsError(f"{gguf_path.name} is not a readable GGUF file: {exc}") from exc
    meta = _gguf_metadata(reader)
    config = LlamaConfig.from_gguf_metadata(meta)
    source = {t.name: t for t in reader.tensors}
    expected = {"token_embd.weight", "output_norm.weight"} | {
        f"blk.{i}.{part}.weight"
        for i in range(config.n_layers)
        for part in (
            "attn_norm",
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_norm",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        )
    }
    missing = expected - set(source)
    if missing:
        raise WeightsError(f"GGUF lacks {len(missing)} tensors, e.g. {sorted(missing)[:3]}")

    def tensor(name: str) -> np.ndarray:
        t = source[name]
        data = gguf.quants.dequantize(t.data, t.tensor_type)
        return np.asarray(data, dtype=np.float32).reshape([int(n) for n in reversed(t.shape)])

    tensors = {"embed": tensor("token_embd.weight"), "final_norm": tensor("output_norm.weight")}
    for i in range(config.n_layers):
        say(f"converting weights: layer {i + 1}/{config.n_layers}")
        p = f"blk.{i}."
        q = unpermute_rows(tensor(p + "attn_q.weight"), config.n_heads)
        k = unpermute_rows(tensor(p + "attn_k.weight"), config.n_kv_heads)
        v = tensor(p + "attn_v.weight")
        tensors[f"layers.{i}.attn_norm"] = tensor(p + "attn_norm.weight")
        tensors[f"layers.{i}.wqkv"] = np.concatenate([q, k, v], axis=0).T.copy()
        tensors[f"layers.{i}.wo"] = tensor(p + "attn_output.weight").T.copy()
        tensors[f"layers.{i}.mlp_norm"] = tensor(p + "ffn_norm.weight")
        gate_up = np.concatenate(
            [tensor(p + "ffn_gate.weight"), tensor(p + "ffn_up.weight")], axis=0
        )
        tensors[f"layers.{i}.w_gate_up"] = gate_up.T.copy()
        tensors[f"layers.{i}.w_down"] = tensor(p + "ffn_down.weight").T.copy()
    _check_tensors(config, {n: (str(a.dtype), a.shape) for n, a in tensors.items()})

    extra = {
        "source": {"file": gguf_path.name, "sha256": sha256_file(gguf_path)},
        "chat_template": meta.get("tokenizer.chat_template"),
        "special_tokens": {
            "bos": int(meta["tokenizer.ggml.bos_token_id"]),
            "eos": int(meta["tokenizer.ggml.eos_token_id"]),
        },
    }
    write_checkpoint(
        out_dir,
        config,
        tensors,
        extra=extra,
        tokenizer_writer=lambda path: _write_tokenizer(meta, path),
    )
    say(f"weights ready in {out_dir}")
    return out_dir


def write_checkpoint(
    out_dir: Path,
    config: LlamaConfig,
    tensors: dict[str, np.ndarray],
    *,
    extra: dict[str, Any] | None = None,
    tokenizer_writer: Callable[[Path], None] | None = None,
) -> None:
    """Writes under `<out_dir>.partial` and renames: a crash never leaves a half cache."""
    from safetensors.numpy import save_file

    staging = out_dir.with_name(out_dir.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(staging / WEIGHTS_FILE))
    if tokenizer_writer is not None:
        tokenizer_writer(staging / TOKENIZER_FILE)
    manifest = {
        "format_version": FORMAT_VERSION,
        "config": json.loads(config.to_json()),
        "tensor_count": len(tensors),
        "sha256": sha256_file(staging / WEIGHTS_FILE),
        **(extra or {}),
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    if out_dir.exists():
        for old in out_dir.iterdir():
            old.unlink()
        out_dir.rmdir()
    staging.rename(out_dir)


def _write_tokenizer(meta: dict[str, Any], path: Path) -> None:
    from shared.neural.tokenizer import tokenizer_from_gguf_metadata

    tokenizer_from_gguf_metadata(meta).save(str(path))


# --- loading ---------------------------------------------------------------------------------


def _check_tensors(config: LlamaConfig, found: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    expected = config.expected_shapes()
    if len(found) != len(expected):
        raise WeightsError(f"expected {len(expected)} tensors, found {len(found)}")
    unknown, absent = set(found) - set(expected), set(expected) - set(found)
    if unknown or absent:
        raise WeightsError(
            f"tensor names differ: unexpected {sorted(unknown)[:3]}, missing {sorted(absent)[:3]}"
        )
    for name, (dtype, shape) in found.items():
        if dtype.lower() not in ("f32", "float32"):
            raise WeightsError(f"{name}: dtype {dtype}, expected F32")
        if tuple(shape) != expected[name]:
            raise WeightsError(f"{name}: shape {tuple(shape)}, expected {expected[name]}")


def read_safetensors_header(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"{path.name} is {size} bytes, over the {MAX_WEIGHTS_BYTES} limit")
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) != 8:
            raise WeightsError(f"{path.name} is truncated: no header")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES or header_len + 8 > size:
            raise WeightsError(f"{path.name} has an invalid header length {header_len}")
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WeightsError(f"{path.name} has a corrupt header: {exc}") from exc
    header.pop("__metadata__", None)
    data_len = size - 8 - header_len
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        if not 0 <= start <= end <= data_len:
            raise WeightsError(f"{path.name} is truncated: {name} lies outside the file")
    return header


def load_checkpoint(directory: Path, *, verify_checksum: bool = True) -> Checkpoint:
    from safetensors.numpy import load_file

    manifest_path, weights_path = directory / MANIFEST_FILE, directory / WEIGHTS_FILE
    if not manifest_path.exists() or not weights_path.exists():
        raise WeightsError(f"no converted weights in {directory}: run `make weights`")
    try:
        manifest = json.loads(manifest_path.read_text())
        config = LlamaConfig(**manifest["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise WeightsError(f"{manifest_path} is corrupt: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"weights format {manifest.get('format_version')}, expected {FORMAT_VERSION}"
        )
    header = read_safetensors_header(weights_path)
    if len(header) != manifest.get("tensor_count"):
        raise WeightsError(
            f"manifest lists {manifest.get('tensor_count')} tensors, file has {len(header)}"
        )
    _check_tensors(config, {name: (e["dtype"], tuple(e["shape"])) for name, e in header.items()})
    if verify_checksum:
        actual = sha256_file(weights_path)
        if actual != manifest["sha256"]:
            raise WeightsError(
                f"{weights_path.name} checksum {actual[:12]} does not match"
                f" the manifest's {manifest['sha256'][:12]}"
            )
    return Checkpoint(
        config=config, tensors=load_file(str(weights_path)), manifest=manifest, directory=directory
    )
