"""LoRA adapters for the Llama module: host-side weights, the device-resident adapter bank, and
the gathered low-rank update that lets every row of one batch use its own adapter set.

Design choices (DESIGN.md §3):
- Targets are attention q, k, v, o. Weights are kept on the host in PEFT's orientation
  (A [r, d_in], B [d_out, r]), so what is trained here saves to, and loads from, PEFT's format
  unchanged; the module computes x @ W with W [d_in, d_out], so the update is x·Aᵀ·Bᵀ.
- The bank holds `slots` adapters per layer at one maximum rank R; a smaller rank is zero
  padded (padding adds nothing). Slot 0 is all zeros: rows with fewer adapters than the batch's
  adapter width point their spare entries there with gate 0. Bᵀ is stored pre-scaled by alpha/r,
  so a row's update is Σ_j g_j · (x Aⱼᵀ)(alpha_j/r_j Bⱼᵀ), i.e. W + Σ g·alpha/r·B·A (never merged).
- A for q, k and v is one [d, 3R] block, so the x·Aᵀ of the three targets is one gathered
  matmul; their B stay separate (a block-diagonal B would triple its bytes).
- The bank is data, not a constant: installing an adapter writes one slot in place (a donated
  update) and never recompiles anything. Each batch row's adapters are gathered from the bank
  into a `LoraBatch` that the step takes as input (see there for why).

Axis letters: b batch, t positions, j adapters per row, d model, r rank, o output features.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from shared.neural.config import LlamaConfig

TARGETS = ("q", "k", "v", "o")
MAX_ADAPTERS_PER_REQUEST = 3


class AdapterError(ValueError):
    """An adapter that cannot be used: wrong shapes, rank, targets, values or checksum."""


def target_shapes(config: LlamaConfig) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each LoRA target, as PEFT sees the Hugging Face projections."""
    d, q_out = config.d_model, config.n_heads * config.head_dim
    kv_out = config.n_kv_heads * config.head_dim
    return {"q": (d, q_out), "k": (d, kv_out), "v": (d, kv_out), "o": (q_out, d)}


@dataclass(frozen=True)
class LoraWeights:
    """One adapter: `tensors[(layer, target)] = (A [r, d_in], B [d_out, r])`, float32. A target
    or layer that is absent has no update."""

    rank: int
    alpha: float
    tensors: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes + b.nbytes for a, b in self.tensors.values())

    def validate(self, config: LlamaConfig, *, max_rank: int) -> None:
        if not 1 <= self.rank <= max_rank:
            raise AdapterError(f"rank {self.rank} is outside 1..{max_rank}")
        if not np.isfinite(self.alpha) or self.alpha <= 0:
            raise AdapterError(f"lora_alpha must be a positive number, got {self.alpha}")
        shapes = target_shapes(config)
        for (layer, target), (a, b) in self.tensors.items():
            if not 0 <= layer < config.n_layers or target not in shapes:
                raise AdapterError(f"no LoRA target {target!r} in layer {layer}")
            d_in, d_out = shapes[target]
            if a.shape != (self.rank, d_in) or b.shape != (d_out, self.rank):
                raise AdapterError(
                    f"layer {layer} {target}: A {a.shape} and B {b.shape}, expected"
                    f" {(self.rank, d_in)} and {(d_out, self.rank)}"
                )
            if a.dtype != np.float32 or b.dtype != np.float32:
                raise AdapterError(f"layer {layer} {target}: tensors must be float32")
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                raise AdapterError(f"layer {layer} {target}: non-finite values")


def random_lora(
    config: LlamaConfig, *, rank: int, alpha: float, seed: int, scale: float = 0.02
) -> LoraWeights:
    """An adapter with non-zero A and B on every target (for tests and benchmarks; a trained
    adapter starts with B = 0)."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(config.n_layers):
        for target, (d_in, d_out) in target_shapes(config).items():
            a = rng.normal(0, scale, (rank, d_in)).astype(np.float32)
            b = rng.normal(0, scale, (d_out, rank)).astype(np.float32)
            tensors[(layer, target)] = (a, b)
    return LoraWeights(rank=rank, alpha=alpha, tensors=tensors)


@dataclass(frozen=True)
class LoraBank:
    """Per layer: a_qkv [N, d, 3R]; b_q [N, R, H·Dh]; b_k, b_v [N, R, K·Dh]; a_o [N, H·Dh, R];
    b_o [N, R, d]. N slots, slot 0 all zeros. Each field is a tuple over layers."""

    a_qkv: tuple[jax.Array, ...]
    b_q: tuple[jax.Array, ...]
    b_k: tuple[jax.Array, ...]
    b_v: tuple[jax.Array, ...]
    a_o: tuple[jax.Array, ...]
    b_o: tuple[jax.Array, ...]

    @classmethod
    def zeros(cls, config: LlamaConfig, *, slots: int, rank: int) -> LoraBank:
        shapes = _slot_shapes(config, rank)
        layers = range(config.n_layers)
        return cls(
            **{
                name: tuple(jnp.zeros((slots, *shape), jnp.float32) for _ in layers)
                for name, shape in shapes.items()
            }
        )

    @property
    def slots(self) -> int:
        return int(self.a_qkv[0].shape[0])

    @property
    def rank(self) -> int:
        return int(self.b_q[0].shape[1])

    @staticmethod
    def slot_nbytes(config: LlamaConfig, rank: int) -> int:
        per_layer = sum(int(np.prod(s)) for s in _slot_shapes(config, rank).values())
        return 4 * per_layer * config.n_layers


jax.tree_util.register_dataclass(
    LoraBank, data_fields=["a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o"], meta_fields=[]
)


def _slot_shapes(config: LlamaConfig, rank: int) -> dict[str, tuple[int, int]]:
    d, q_out = config.d_model, config.n_heads * config.head_dim
    kv_out = config.n_kv_heads * config.head_dim
    return {
        "a_qkv": (d, 3 * rank),
        "b_q": (rank, q_out),
        "b_k": (rank, kv_out),
        "b_v": (rank, kv_out),
        "a_o": (q_out, rank),
        "b_o": (rank, d),
    }


@dataclass(frozen=True)
class PackedLora:
    """An adapter laid out as one bank slot, ready to be copied in: what the adapter cache
    keeps in host RAM, so activating it is a device write and nothing else."""

    fields: dict[str, np.ndarray]

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.fields.values())


def pack(weights: LoraWeights, config: LlamaConfig, *, rank: int) -> dict[str, np.ndarray]:
    """One adapter laid out as one bank slot: each field [L, ...] as in `LoraBank`, zero
    padded to the bank's rank, Bᵀ scaled by alpha/r."""
    if weights.rank > rank:
        raise AdapterError(f"rank {weights.rank} exceeds the bank's rank {rank}")
    shapes = _slot_shapes(config, rank)
    out = {name: np.zeros((config.n_layers, *s), np.float32) for name, s in shapes.items()}
    r, scale = weights.rank, weights.scale
    for (layer, target), (a, b) in weights.tensors.items():
        if target == "o":
            out["a_o"][layer, :, :r] = a.T
            out["b_o"][layer, :r] = scale * b.T
        else:
            column = TARGETS.index(target) * rank
            out["a_qkv"][layer, :, column : column + r] = a.T
            out[f"b_{target}"][layer, :r] = scale * b.T
    return out


@functools.partial(jax.jit, donate_argnums=(0,))
def install(bank: LoraBank, slot: jax.Array, packed: dict[str, jax.Array]) -> LoraBank:
    """Writes one packed adapter into `slot`, in place (the bank is donated)."""

    def put(buffers: tuple[jax.Array, ...], values: jax.Array) -> tuple[jax.Array, ...]:
        return tuple(
            jax.lax.dynamic_update_index_in_dim(buffer, values[i], slot, axis=0)
            for i, buffer in enumerate(buffers)
        )

    return LoraBank(**{name: put(getattr(bank, name), packed[name]) for name in packed})


@dataclass(frozen=True)
class LoraBatch:
    """Each batch row's adapters, gathered from the bank: the `LoraBank` fields with [B, J]
    in front of the slot shape (per layer), and gates [B, J]. Gathering is a step of its own
    (`gather`), not part of the model step: the engine gathers when the batch's membership
    changes and reuses the result across the decode steps in between (measured here: a
    gather inside the jitted step made a 16-row decode step ~10 ms slower; the step with
    gathered inputs pays ~1 ms for its LoRA work)."""

    a_qkv: tuple[jax.Array, ...]
    b_q: tuple[jax.Array, ...]
    b_k: tuple[jax.Array, ...]
    b_v: tuple[jax.Array, ...]
    a_o: tuple[jax.Array, ...]
    b_o: tuple[jax.Array, ...]
    gates: jax.Array

    @property
    def rank(self) -> int:
        return int(self.b_q[0].shape[2])


jax.tree_util.register_dataclass(
    LoraBatch,
    data_fields=["a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o", "gates"],
    meta_fields=[],
)


@jax.jit
def gather(bank: LoraBank, slots: jax.Array, gates: jax.Array) -> LoraBatch:
    """Rows' adapters [B, J] of bank slots (0: none) with their gates -> a `LoraBatch`."""
    fields = ("a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o")
    taken = {name: tuple(layer[slots] for layer in getattr(bank, name)) for name in fields}
    return LoraBatch(**taken, gates=gates.astype(jnp.float32))


def qkv_delta(x: jax.Array, lora: LoraBatch, layer: int) -> jax.Array:
    """x [B, T, d] -> the fused q|k|v update [B, T, (H + 2K)·Dh] of each row's adapters."""
    rank = lora.rank
    xa = jnp.einsum("btd,bjdr->btjr", x, lora.a_qkv[layer]) * lora.gates[:, None, :, None]
    parts = [
        jnp.einsum("btjr,bjro->bto", xa[..., i * rank : (i + 1) * rank], b[layer])
        for i, b in enumerate((lora.b_q, lora.b_k, lora.b_v))
    ]
    return jnp.concatenate(parts, axis=-1)


def o_delta(x: jax.Array, lora: LoraBatch, layer: int) -> jax.Array:
    """x [B, T, H·Dh] (attention output) -> the o-projection update [B, T, d]."""
    xa = jnp.einsum("btd,bjdr->btjr", x, lora.a_o[layer]) * lora.gates[:, None, :, None]
    return jnp.einsum("btjr,bjro->bto", xa, lora.b_o[layer])


def merged_tensors(
    tensors: dict[str, np.ndarray],
    config: LlamaConfig,
    adapters: list[tuple[LoraWeights, float]],
) -> dict[str, np.ndarray]:
    """The checkpoint with W + Σ g·alpha/r·B·A folded in, computed in numpy: the independent
    reference the batched path is tested against (never used to serve)."""
    merged = dict(tensors)
    q_out = config.n_heads * config.head_dim
    kv_out = config.n_kv_heads * config.head_dim
    columns = {"q": (0, q_out), "k": (q_out, q_out + kv_out), "v": (q_out + kv_out, None)}
    for layer in range(config.n_layers):
        wqkv = tensors[f"layers.{layer}.wqkv"].astype(np.float64)
        wo = tensors[f"layers.{layer}.wo"].astype(np.float64)
        for weights, gate in adapters:
            for target in TARGETS:
                if (layer, target) not in weights.tensors:
                    continue
                a, b = (t.astype(np.float64) for t in weights.tensors[(layer, target)])
                delta = (gate * weights.scale * (b @ a)).T  # [d_in, d_out]
                if target == "o":
                    wo = wo + delta
                else:
                    start, stop = columns[target]
                    wqkv[:, start:stop] += delta
        merged[f"layers.{layer}.wqkv"] = wqkv.astype(np.float32)
        merged[f"layers.{layer}.wo"] = wo.astype(np.float32)
    return merged
