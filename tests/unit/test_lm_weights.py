"""The weights loader refuses what it cannot trust (small synthetic checkpoints, no model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.neural.config import LlamaConfig
from shared.neural.weights import WeightsError, load_checkpoint, unpermute_rows, write_checkpoint

TINY = LlamaConfig(
    vocab_size=32, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=24, max_seq_len=64
)


def _tensors(config: LlamaConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        name: rng.standard_normal(shape).astype(np.float32)
        for name, shape in config.expected_shapes().items()
    }


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    out = tmp_path / "ckpt"
    write_checkpoint(out, TINY, _tensors(TINY))
    return out


def llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of Q/K rows, for the round trip."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def test_unpermute_inverts_the_gguf_permutation() -> None:
    original = np.random.default_rng(1).standard_normal((9 * 64, 576)).astype(np.float32)
    assert np.array_equal(unpermute_rows(llama_cpp_permute(original, 9), 9), original)
    assert not np.array_equal(llama_cpp_permute(original, 9), original)


def test_a_valid_checkpoint_loads(checkpoint: Path) -> None:
    loaded = load_checkpoint(checkpoint)
    assert loaded.config == TINY
    assert set(loaded.tensors) == set(TINY.expected_shapes())
    assert not (checkpoint.parent / "ckpt.partial").exists()


def test_a_truncated_file_is_refused(checkpoint: Path) -> None:
    weights = checkpoint / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(WeightsError, match="truncated"):
        load_checkpoint(checkpoint)


def test_a_flipped_byte_fails_the_checksum(checkpoint: Path) -> None:
    weights = checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum"):
        load_checkpoint(checkpoint)


def test_a_corrupt_header_is_refused(checkpoint: Path) -> None:
    weights = checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:12] = b"\xff\xfe\x00{"
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="header"):
        load_checkpoint(checkpoint)


def test_a_wrong_shape_is_refused(tmp_path: Path) -> None:
    tensors = _tensors(TINY)
    tensors["layers.1.wo"] = np.zeros((16, 17), np.float32)
    write_checkpoint(tmp_path / "bad", TINY, tensors)
    with pytest.raises(WeightsError, match=r"layers\.1\.wo: shape"):
        load_checkpoint(tmp_path / "bad")


def test_missing_or_extra_tensors_are_refused(tmp_path: Path) -> None:
    tensors = _tensors(TINY)
    del tensors["final_norm"]
    tensors["surprise"] = np.zeros((1,), np.float32)
    write_checkpoint(tmp_path / "bad", TINY, tensors)
    with pytest.raises(WeightsError, match="names differ"):
        load_checkpoint(tmp_path / "bad")


def test_a_wrong_dtype_is_refused(tmp_path: Path) -> None:
    tensors = _tensors(TINY)
    tensors["final_norm"] = tensors["final_norm"].astype(np.float16)
    write_checkpoint(tmp_path / "bad", TINY, tensors)
    with pytest.raises(WeightsError, match="dtype"):
        load_checkpoint(tmp_path / "bad")


def test_a_manifest_that_disagrees_is_refused(checkpoint: Path) -> None:
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["tensor_count"] += 1
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="manifest lists"):
        load_checkpoint(checkpoint)


def test_no_weights_gives_the_command_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="make weights"):
        load_checkpoint(tmp_path / "nothing")
