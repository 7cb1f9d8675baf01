"""Model configuration, read from GGUF metadata and saved beside the converted weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 49152
    d_model: int = 576
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3
    d_ff: int = 1536
    rope_theta: float = 100000.0
    rms_eps: float = 1e-5
    max_seq_len: int = 8192
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def from_gguf_metadata(cls, meta: dict[str, Any]) -> LlamaConfig:
        arch = meta["general.architecture"]
        if arch != "llama":
            raise ValueError(f"unsupported architecture {arch!r}: only llama")
        return cls(
            vocab_size=int(meta.get(f"{arch}.vocab_size") or len(meta["tokenizer.ggml.tokens"])),
            d_model=int(meta[f"{arch}.embedding_length"]),
            n_layers=int(meta[f"{arch}.block_count"]),
            n_heads=int(meta[f"{arch}.attention.head_count"]),
            n_kv_heads=int(meta[f"{arch}.attention.head_count_kv"]),
            d_ff=int(meta[f"{arch}.feed_forward_length"]),
            rope_theta=float(meta[f"{arch}.rope.freq_base"]),
            rms_eps=float(meta[f"{arch}.attention.layer_norm_rms_epsilon"]),
            max_seq_len=int(meta[f"{arch}.context_length"]),
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LlamaConfig:
        return cls(**json.loads(text))

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor of the converted checkpoint, in the layout the module uses
        (x @ W: weights are [in, out]; Q/K/V and gate/up fused)."""
        d, h, k, hd, ff = self.d_model, self.n_heads, self.n_kv_heads, self.head_dim, self.d_ff
        shapes: dict[str, tuple[int, ...]] = {
            "embed": (self.vocab_size, d),
            "final_norm": (d,),
        }
        for i in range(self.n_layers):
            shapes[f"layers.{i}.attn_norm"] = (d,)
            shapes[f"layers.{i}.wqkv"] = (d, (h + 2 * k) * hd)
            shapes[f"layers.{i}.wo"] = (h * hd, d)
            shapes[f"layers.{i}.mlp_norm"] = (d,)
            shapes[f"layers.{i}.w_gate_up"] = (d, 2 * ff)
            shapes[f"layers.{i}.w_down"] = (ff, d)
        return shapes
