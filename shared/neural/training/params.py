"""The trainable LoRA parameters, and the `LoraBatch` the model takes built from them.

Parameters are laid out as one bank slot (`shared.neural.lora.LoraBank`), stacked over layers
and not pre-scaled: a_qkv [L, d, 3R] (Aᵀ of q|k|v), b_q [L, R, H·Dh], b_k and b_v
[L, R, K·Dh] (Bᵀ), a_o [L, H·Dh, R], b_o [L, R, d]. So the forward pass is the served one
(the same `qkv_delta` and `o_delta`), and converting to and from PEFT's orientation
(A [r, d_in], B [d_out, r]) is a transpose. The scale alpha/r and the gate are inputs, not baked
in, so adapters of smaller rank are zero padded like the bank pads them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from shared.neural.config import LlamaConfig
from shared.neural.lora import TARGETS, AdapterError, LoraBatch, LoraWeights, target_shapes

Params = dict[str, jax.Array]
FIELDS = ("a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o")


def _shapes(config: LlamaConfig, rank: int) -> dict[str, tuple[int, ...]]:
    d, q_out = config.d_model, config.n_heads * config.head_dim
    kv_out = config.n_kv_heads * config.head_dim
    layers = config.n_layers
    return {
        "a_qkv": (layers, d, 3 * rank),
        "b_q": (layers, rank, q_out),
        "b_k": (layers, rank, kv_out),
        "b_v": (layers, rank, kv_out),
        "a_o": (layers, q_out, rank),
        "b_o": (layers, rank, d),
    }


def _a_slot(target: str, rank: int) -> tuple[str, slice]:
    """Where a target's Aᵀ lives: its columns of a_qkv, or a_o."""
    if target == "o":
        return "a_o", slice(0, rank)
    start = TARGETS.index(target) * rank
    return "a_qkv", slice(start, start + rank)


def _host_params(config: LlamaConfig, rank: int) -> dict[str, np.ndarray]:
    return {name: np.zeros(shape, np.float32) for name, shape in _shapes(config, rank).items()}


def _to_device(params: dict[str, np.ndarray]) -> Params:
    return {name: jnp.asarray(value) for name, value in params.items()}


def _fill(host: dict[str, np.ndarray], weights: LoraWeights, rank: int) -> None:
    if weights.rank > rank:
        raise AdapterError(f"rank {weights.rank} exceeds {rank}")
    for (layer, target), (a, b) in weights.tensors.items():
        a_field, columns = _a_slot(target, rank)
        host[a_field][layer, :, columns.start : columns.start + weights.rank] = a.T
        host[f"b_{target}"][layer, : weights.rank] = b.T


def initial_params(config: LlamaConfig, *, rank: int, seed: int) -> Params:
    """PEFT's initialisation: A ~ U(±1/√d_in) (kaiming-uniform with a = √5), B = 0, so the
    untrained adapter changes nothing and every gradient step starts from the base model.
    numpy's generator makes it the same on every platform for a seed."""
    rng = np.random.default_rng(seed)
    host = _host_params(config, rank)
    for layer in range(config.n_layers):
        for target, (d_in, _) in target_shapes(config).items():
            bound = 1.0 / np.sqrt(d_in)
            a_field, columns = _a_slot(target, rank)
            host[a_field][layer, :, columns] = rng.uniform(-bound, bound, (d_in, rank))
    return _to_device(host)


def params_from_weights(
    weights: LoraWeights, config: LlamaConfig, *, rank: int, fill_seed: int | None = None
) -> Params:
    """`weights` as parameters of rank `rank` (zero padded). Targets the adapter lacks are
    zero (no update), or, with `fill_seed`, PEFT-initialised so training can grow them."""
    if fill_seed is None:
        host = _host_params(config, rank)
    else:
        host = {
            name: np.array(value)
            for name, value in initial_params(config, rank=rank, seed=fill_seed).items()
        }
        for layer, target in weights.tensors:
            a_field, columns = _a_slot(target, rank)
            host[a_field][layer, :, columns] = 0.0
    _fill(host, weights, rank)
    return _to_device(host)


def weights_from_params(
    params: Params, config: LlamaConfig, *, rank: int, alpha: float
) -> LoraWeights:
    """Parameters back to PEFT's orientation: float32, contiguous, every layer and target."""
    host = {name: np.asarray(value, np.float32) for name, value in params.items()}
    tensors = {}
    for layer in range(config.n_layers):
        for target in TARGETS:
            a_field, columns = _a_slot(target, rank)
            a = np.ascontiguousarray(host[a_field][layer, :, columns].T)
            b = np.ascontiguousarray(host[f"b_{target}"][layer].T)
            tensors[(layer, target)] = (a, b)
    return LoraWeights(rank=rank, alpha=alpha, tensors=tensors)


def lora_batch(params: Params, scale: jax.Array, gate: jax.Array, batch: int) -> LoraBatch:
    """One adapter for every row of a batch, at `gate`: the model's per-row adapter input with
    a single adapter per row (broadcast, not copied per row by the caller)."""
    layers = params["a_qkv"].shape[0]

    def rows(field: str, factor: jax.Array | None = None) -> tuple[jax.Array, ...]:
        stacked = params[field] if factor is None else params[field] * factor
        shape = (batch, 1, *stacked.shape[1:])
        return tuple(jnp.broadcast_to(stacked[i], shape) for i in range(layers))

    return LoraBatch(
        a_qkv=rows("a_qkv"),
        b_q=rows("b_q", scale),
        b_k=rows("b_k", scale),
        b_v=rows("b_v", scale),
        a_o=rows("a_o"),
        b_o=rows("b_o", scale),
        gates=jnp.full((batch, 1), gate, jnp.float32),
    )


def update_norm_squared(params: Params, scale: jax.Array) -> jax.Array:
    """Σ over layers and targets of ‖alpha/r·B·A‖²_F, the squared size of the update the
    adapter makes, from rank-by-rank Gram matrices, ‖AᵀBᵀ‖² = Σ (A·Aᵀ) ∘ (B·Bᵀ), never the
    d_in-by-d_out product.
    Penalising the update rather than A and B apart leaves A alone while B is zero (Adam would
    otherwise turn a lone weight-decay gradient on A into a full-rate shrink of it)."""
    rank = params["b_q"].shape[1]
    total = jnp.float32(0.0)
    for target in TARGETS:
        a_field, columns = _a_slot(target, rank)
        a = params[a_field][:, :, columns]  # [L, d_in, R] = Aᵀ
        b = params[f"b_{target}"]  # [L, R, d_out] = Bᵀ
        gram_a = jnp.einsum("ldr,lds->lrs", a, a)
        gram_b = jnp.einsum("lro,lso->lrs", b, b)
        total = total + jnp.sum(gram_a * gram_b)
    return scale * scale * total
