"""A Llama decoder in Flax NNX, shaped for SmolLM2-135M.

Design choices (DESIGN.md §3, measured on this CPU):
- f32 by default: bf16 is several times slower on this CPU's XLA backend. `dtype=bfloat16`
  (for accelerators, chosen by `inference_dtype`) stores the weights, the matmuls' inputs and
  the KV cache in bf16, while every matmul accumulates in f32 (`preferred_element_type`);
  RMSNorm, RoPE, SiLU and softmax run in f32; new keys/values are cast to the cache's dtype
  before they are scattered in (no mixed-dtype scatter); logits come out in f32. The residual
  stream stays f32: it is [B, T, d], small beside the weights each step reads, and a bf16 one
  doubled the logits' error (measured on SmolLM2: RMS 2.7 % of their std against 1.4 %, and
  greedy continuations that left the f32 reference's). With f32 every cast is a no-op, so the
  default computes exactly what it computed before the dtype option (bit for bit).
- Q/K/V fused into one [d, (H + 2K)·Dh] matmul and gate/up into one [d, 2F] matmul: fewer,
  larger GEMMs per layer, which is what small-batch decode is bound by.
- Layers unrolled in Python under `jit` (not `lax.scan`): XLA fuses across layer boundaries and
  the KV cache is updated in place when its buffers are donated.
- One KV cache (a [B, K, S, Dh] buffer per layer) per slot pool; every call writes its tokens
  at their own positions and attends to cache entries at positions <= its own, so prefill
  (T > 1, right padded) and decode (T = 1) are the same function and rows are independent.
  With `rows`, a call runs on a subset of the pool's slots (cache rows gathered for attention,
  new keys/values scattered back in place): decode costs what the live requests need, not what
  the pool holds, and prefill writes straight into its slot.
  Per-layer buffers rather than one stacked array: stacking copied the whole cache every step
  (measured: 16-stream engine throughput went from 54 to 81 tok/s without it).
- RoPE rotates halves (Hugging Face layout); the converter un-permutes GGUF's interleaving.
- Tied embeddings: logits = h · Eᵀ.

Axis letters in einsums: b batch, t query positions, s cache positions, d model, k KV heads,
g query heads per KV head, h head dim, f feed-forward, v vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from shared.neural.config import LlamaConfig
from shared.neural.lora import LoraBatch, o_delta, qkv_delta


@dataclass(frozen=True)
class KVCache:
    """One [B, K, S, Dh] buffer per layer for keys and for values. Per-layer buffers (not one
    stacked array) let XLA update each in place when the cache is donated; heads before
    positions make each (row, head) a contiguous [S, Dh] block, so attention is a batched
    matmul with no transpose of the cache."""

    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]

    @classmethod
    def zeros(
        cls, config: LlamaConfig, *, batch: int, length: int, dtype: Any = jnp.float32
    ) -> KVCache:
        """`dtype`: the model's (`model.dtype`); a bf16 cache halves its bytes and the bytes
        each decode step reads."""
        shape = (batch, config.n_kv_heads, length, config.head_dim)
        return cls(
            tuple(jnp.zeros(shape, dtype) for _ in range(config.n_layers)),
            tuple(jnp.zeros(shape, dtype) for _ in range(config.n_layers)),
        )

    @property
    def batch(self) -> int:
        return int(self.k[0].shape[0])

    @property
    def dtype(self) -> jnp.dtype:
        return self.k[0].dtype


jax.tree_util.register_dataclass(KVCache, data_fields=["k", "v"], meta_fields=[])


class RMSNorm(nnx.Module):
    def __init__(self, dim: int, *, eps: float):
        self.weight = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: the f32 residual stream -> the normalized activations in the weights' dtype
        (the next matmul's input); computed in f32."""
        wide = x.astype(jnp.float32)
        scale = jax.lax.rsqrt(jnp.mean(wide * wide, axis=-1, keepdims=True) + self.eps)
        weight = self.weight[...]
        return (wide * scale * weight.astype(jnp.float32)).astype(weight.dtype)


def matmul(spec: str, x: jax.Array, w: jax.Array) -> jax.Array:
    """An einsum that accumulates in f32 and returns f32 whatever its inputs' dtype: callers
    cast the result where it is stored (a no-op in f32)."""
    return jnp.einsum(spec, x, w, preferred_element_type=jnp.float32)


def rope_tables(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """cos/sin of shape [B, T, Dh] for integer positions [B, T]."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, Dh/2]
    angles = jnp.concatenate([angles, angles], axis=-1)
    return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """x: [B, T, N, Dh]; rotate_half as in Hugging Face Llama."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos[:, :, None, :] + rotated * sin[:, :, None, :]


class Attention(nnx.Module):
    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        self.config = config
        c, init = config, nnx.initializers.normal(0.02)
        self.wqkv = nnx.Param(
            init(rngs.params(), (c.d_model, (c.n_heads + 2 * c.n_kv_heads) * c.head_dim))
        )
        self.wo = nnx.Param(init(rngs.params(), (c.n_heads * c.head_dim, c.d_model)))

    def __call__(
        self,
        x: jax.Array,
        cos: jax.Array,
        sin: jax.Array,
        positions: jax.Array,
        cache_k: jax.Array,
        cache_v: jax.Array,
        attend_len: int | None = None,
        rows: jax.Array | None = None,
        lora: LoraBatch | None = None,
        layer: int = 0,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        c = self.config
        b, t, _ = x.shape
        heads_q, kv, hd = c.n_heads, c.n_kv_heads, c.head_dim
        qkv = matmul("btd,dn->btn", x, self.wqkv[...])  # f32 until RoPE is applied
        if lora is not None:  # each row's own adapters: W·x + Σ g·alpha/r·B·A·x, never merged
            qkv = qkv + _lora_update(qkv_delta, x, lora, layer).astype(jnp.float32)
        q = qkv[..., : heads_q * hd].reshape(b, t, heads_q, hd)
        k = qkv[..., heads_q * hd : (heads_q + kv) * hd].reshape(b, t, kv, hd)
        v = qkv[..., (heads_q + kv) * hd :].reshape(b, t, kv, hd)
        q = apply_rope(q, cos, sin).astype(x.dtype)
        # Cast to the cache's dtype before the scatter: JAX warns on an f32 -> bf16 scatter
        # (an error in future releases), and the cache may be either dtype.
        k = apply_rope(k, cos, sin).astype(cache_k.dtype)
        v = v.astype(cache_v.dtype)

        # Write this call's keys/values at their positions (per row; a position past the end
        # is a padding row and is dropped), then attend to the cache.
        index = (jnp.arange(b) if rows is None else rows)[:, None, None]
        heads = jnp.arange(kv)[None, :, None]
        at = positions[:, None, :]  # [B, 1, T]
        cache_k = cache_k.at[index, heads, at].set(k.transpose(0, 2, 1, 3), mode="drop")
        cache_v = cache_v.at[index, heads, at].set(v.transpose(0, 2, 1, 3), mode="drop")
        # Queries grouped by KV head: [B, K, G·T, Dh], so each (row, KV head) is one matmul.
        g = heads_q // kv
        q = q.reshape(b, t, kv, g, hd).transpose(0, 2, 3, 1, 4).reshape(b, kv, g * t, hd)
        # Attend to the used prefix only: cost follows the longest live sequence, not capacity.
        if rows is None:
            keys, values = cache_k[:, :, :attend_len], cache_v[:, :, :attend_len]
        else:
            keys, values = cache_k[rows, :, :attend_len], cache_v[rows, :, :attend_len]
        scores = jnp.einsum("bkqh,bksh->bkqs", q, keys, preferred_element_type=jnp.float32)
        scores = scores / jnp.sqrt(jnp.float32(hd))  # scores, mask and softmax in f32
        query_pos = jnp.tile(positions, (1, g))[:, None, :, None]  # [B, 1, G·T, 1], g-major
        visible = jnp.arange(keys.shape[2])[None, None, None, :] <= query_pos
        scores = jnp.where(visible, scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(values.dtype)
        out = matmul("bkqs,bksh->bkqh", weights, values).astype(x.dtype)  # [B, K, G·T, Dh]
        out = out.reshape(b, kv, g, t, hd).transpose(0, 3, 1, 2, 4).reshape(b, t, heads_q * hd)
        projected = matmul("btn,nd->btd", out, self.wo[...])
        if lora is not None:
            projected = projected + _lora_update(o_delta, out, lora, layer).astype(jnp.float32)
        return projected, cache_k, cache_v  # f32, for the residual stream


def _lora_update(delta: Any, x: jax.Array, lora: LoraBatch, layer: int) -> jax.Array:
    """`delta(x, lora, layer)` (lora.qkv_delta / o_delta) computed in the adapter batch's dtype
    (the bank's: f32), whatever the activations' dtype: the adapters' small updates are not
    rounded to bf16 before they are added to the f32 accumulator."""
    return delta(x.astype(lora.a_qkv[layer].dtype), lora, layer)


class MLP(nnx.Module):
    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(0.02)
        self.d_ff = config.d_ff
        self.w_gate_up = nnx.Param(init(rngs.params(), (config.d_model, 2 * config.d_ff)))
        self.w_down = nnx.Param(init(rngs.params(), (config.d_ff, config.d_model)))

    def __call__(self, x: jax.Array) -> jax.Array:
        gate_up = matmul("btd,df->btf", x, self.w_gate_up[...])  # SiLU and product in f32
        gate, up = gate_up[..., : self.d_ff], gate_up[..., self.d_ff :]
        hidden = (jax.nn.silu(gate) * up).astype(x.dtype)
        return matmul("btf,fd->btd", hidden, self.w_down[...])  # f32, for the residual stream


class Block(nnx.Module):
    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs):
        self.attn_norm = RMSNorm(config.d_model, eps=config.rms_eps)
        self.attn = Attention(config, rngs=rngs)
        self.mlp_norm = RMSNorm(config.d_model, eps=config.rms_eps)
        self.mlp = MLP(config, rngs=rngs)

    def __call__(
        self,
        x: jax.Array,
        cos: jax.Array,
        sin: jax.Array,
        positions: jax.Array,
        cache_k: jax.Array,
        cache_v: jax.Array,
        attend_len: int | None = None,
        rows: jax.Array | None = None,
        lora: LoraBatch | None = None,
        layer: int = 0,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        attended, cache_k, cache_v = self.attn(
            self.attn_norm(x), cos, sin, positions, cache_k, cache_v, attend_len, rows, lora, layer
        )
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), cache_k, cache_v


class Llama(nnx.Module):
    """Parameters are created in f32 (so a seed gives the same weights in every dtype, up to
    rounding); `build_model` casts them to `dtype`: the dtype of the weights, of the matmuls'
    inputs and of the KV cache the model is meant to run with (`KVCache.zeros(dtype=...)`)."""

    def __init__(self, config: LlamaConfig, *, rngs: nnx.Rngs, dtype: Any = jnp.float32):
        self.config = config
        self.dtype = jnp.dtype(dtype)
        self.embed = nnx.Param(
            nnx.initializers.normal(0.02)(rngs.params(), (config.vocab_size, config.d_model))
        )
        self.layers = nnx.List([Block(config, rngs=rngs) for _ in range(config.n_layers)])
        self.final_norm = RMSNorm(config.d_model, eps=config.rms_eps)

    def __call__(
        self,
        tokens: jax.Array,
        positions: jax.Array,
        cache: KVCache,
        attend_len: int | None = None,
        rows: jax.Array | None = None,
        last: jax.Array | None = None,
        lora: LoraBatch | None = None,
    ) -> tuple[jax.Array, KVCache]:
        """tokens, positions: [B, T] int32 -> logits [B, T, V] and the updated cache.
        `attend_len` (static) bounds attention to the first cache positions; every position
        in `positions` must be below it. `rows` [B]: the cache rows (slots) these sequences
        live in (default: row i is sequence i). `last` [B]: only the logits at that index of
        each row, [B, V]: the vocabulary projection is a fifth of the model's work, and a
        prefill needs it for one position only. `lora`: each row's adapter slots and gates
        over the device-resident adapter bank (None: the base-only path, no LoRA work).
        Logits are f32 whatever the model's dtype; the cache keeps its own dtype."""
        x = self.embed[...][tokens].astype(jnp.float32)  # the residual stream: f32 always
        cos, sin = rope_tables(positions, self.config.head_dim, self.config.rope_theta)
        new_k, new_v = [], []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(
                x, cos, sin, positions, cache.k[i], cache.v[i], attend_len, rows, lora, i
            )
            new_k.append(k)
            new_v.append(v)
        if last is not None:
            x = x[jnp.arange(x.shape[0]), last][:, None]  # [B, 1, d]
        x = self.final_norm(x)
        logits = matmul("btd,vd->btv", x, self.embed[...])
        if last is not None:
            logits = logits[:, 0]
        return logits, KVCache(tuple(new_k), tuple(new_v))


def load_params(model: Llama, tensors: dict[str, np.ndarray]) -> None:
    """Copies a validated checkpoint (shared.neural.weights) into the module's parameters,
    cast to the model's dtype."""

    def put(name: str) -> jax.Array:
        return jnp.asarray(tensors[name], dtype=model.dtype)

    model.embed[...] = put("embed")
    model.final_norm.weight[...] = put("final_norm")
    for i, layer in enumerate(model.layers):
        p = f"layers.{i}."
        layer.attn_norm.weight[...] = put(p + "attn_norm")
        layer.attn.wqkv[...] = put(p + "wqkv")
        layer.attn.wo[...] = put(p + "wo")
        layer.mlp_norm.weight[...] = put(p + "mlp_norm")
        layer.mlp.w_gate_up[...] = put(p + "w_gate_up")
        layer.mlp.w_down[...] = put(p + "w_down")


def build_model(
    config: LlamaConfig,
    tensors: dict[str, np.ndarray] | None = None,
    *,
    seed: int = 0,
    dtype: Any = jnp.float32,
) -> Llama:
    """`dtype` (float32 or bfloat16): see the module docstring; `inference_dtype` picks it."""
    model = Llama(config, rngs=nnx.Rngs(seed), dtype=dtype)
    if model.dtype != jnp.float32:  # before loading: assigning into a Param keeps its dtype
        params = nnx.state(model, nnx.Param)
        nnx.update(model, jax.tree.map(lambda p: p.astype(model.dtype), params))
    if tensors is not None:
        load_params(model, tensors)
    return model


DTYPES = ("float32", "bfloat16")

# What `auto` picks per JAX platform, by measurement (SmolLM2-135M shapes; see docs/model.md):
# - cpu: float32. XLA's CPU backend has no fast bf16 matmul: bf16 decode measured several times
#   slower on this machine (DESIGN.md §3: 4.5 vs 19.6 tok/s at batch 1, 24 vs 57 at batch 16).
#   Remeasured with this path through the engine (bench.engine_random, two runs): batch-1
#   decode 19.9 / 19.0 tok/s in bf16 against 52.7 / 39.5 in f32; 16 streams 177 / 193 against
#   177 / 153 (within noise); the bare batch-1 decode step 148 ms against 17.5 ms.
# - gpu: float32 until measured otherwise. Issue 21's H200 run of a naive bf16 cast (64 decode
#   steps per call) was slower at every batch: 920 vs 996 tok/s at 1 row, 35,852 vs 45,881 at
#   64, 58,457 vs 100,266 at 256. This path (f32 accumulation, bf16 cache, no mixed-dtype
#   scatter) is not measured on a GPU yet: `bench.engine_random --dtype bfloat16` is the
#   measurement that would change this entry (docs/benchmarks.md).
# Any other platform: float32, the reference every dtype is tested against.
AUTO_DTYPE = {"cpu": "float32", "gpu": "float32"}


def inference_dtype(setting: str, platform: str | None = None) -> jnp.dtype:
    """INFERENCE_DTYPE (`auto`, `float32` or `bfloat16`) on a JAX platform (`cpu`, `gpu`, ...;
    default: `jax.default_backend()`) -> the dtype to build the model with."""
    platform = platform or jax.default_backend()
    name = AUTO_DTYPE.get(platform, "float32") if setting == "auto" else setting
    if name not in DTYPES:
        raise ValueError(f"unknown inference dtype {setting!r}: auto, {', '.join(DTYPES)}")
    return jnp.dtype(name)


def forward_fn(model: Llama) -> Any:
    """A jitted pure function (state, tokens, positions, cache) -> (logits, cache) with the
    cache donated, so decode steps update it in place."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def step(
        state: Any, tokens: jax.Array, positions: jax.Array, cache: KVCache
    ) -> tuple[jax.Array, KVCache]:
        return nnx.merge(graphdef, state)(tokens, positions, cache)

    step_donated = jax.jit(step, donate_argnums=(3,))
    return state, step_donated
