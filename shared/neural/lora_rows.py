"""The adapter input a model step takes for its batch's rows, and the LoRA update computed
from it: one class per multi-LoRA implementation (`shared.neural.lora.LORA_IMPLS`; `lora.gather`
builds them from a bank), and `qkv_delta` / `o_delta`, which the model calls per layer.

All three compute, for each row, Σ_j g_j · (x Aⱼ)(alpha_j/r_j Bⱼ) (the B are stored pre-scaled),
and differ in how they read the adapters: see `shared.neural.lora` for the layouts and why.

Axis letters: b batch, t positions, j adapters per row, d model, r rank, o output features,
c (slot, rank) columns of the dense layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class LoraBatch:
    """The adapters of one batch's rows, as the step takes them (`gather` makes them). This
    class is the "gather" implementation: each row's adapters copied out of the bank, the
    `LoraBank` fields with [B, J] in front of the slot shape (per layer), and gates [B, J].
    Gathering is a step of its own, not part of the model step: the engine gathers when the
    batch's membership changes and reuses the result across the decode steps in between
    (measured here: a gather inside the jitted step made a 16-row decode step ~10 ms slower;
    the step with gathered inputs pays ~1 ms for its LoRA work). `DenseRows` and `RaggedRows`
    read the bank in place instead."""

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


@dataclass(frozen=True)
class DenseRows(LoraBatch):
    """The "dense" implementation: the `DenseBank`'s own arrays (a_qkv, b_qkv, a_o, b_o; no
    copies) and each row's gate per bank slot, spread over that slot's columns: `gates`
    [B, N·3R] for the q|k|v A columns, `o_gates` [B, N·R] for the o ones (zero where a row
    does not use the slot; a slot named twice adds its gates). b_q, b_k and b_v are empty:
    B of q, k and v sit on b_qkv's block diagonal. `slots` and `row_gates` [B, J] are the rows'
    own adapters, for calls with T > 1 (a prefill: there the dense form's N·T work per row
    would dwarf the J·T of its own adapters, so each row's are taken out of the bank)."""

    b_qkv: tuple[jax.Array, ...]
    o_gates: jax.Array
    slots: jax.Array
    row_gates: jax.Array
    slot_rank: int

    @property
    def rank(self) -> int:
        return self.slot_rank


@dataclass(frozen=True)
class RaggedRows(LoraBatch):
    """The "ragged" implementation: the `LoraBank`'s own arrays ([N, ...] per layer, no
    copies) and the batch's (row, adapter) entries sorted by bank slot: `rows` [M] (the batch
    row of each entry), `gates` [M], `group_sizes` [N] (entries per slot: the segments
    `ragged_dot` multiplies by their slot's matrices) and `unsort` [B, J] (where row b's j-th
    entry went), M = B·J."""

    rows: jax.Array
    group_sizes: jax.Array
    unsort: jax.Array

    @property
    def rank(self) -> int:
        return int(self.b_q[0].shape[1])


_ROW_FIELDS = ["a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o", "gates"]
jax.tree_util.register_dataclass(LoraBatch, data_fields=_ROW_FIELDS, meta_fields=[])
jax.tree_util.register_dataclass(
    DenseRows,
    data_fields=[*_ROW_FIELDS, "b_qkv", "o_gates", "slots", "row_gates"],
    meta_fields=["slot_rank"],
)
jax.tree_util.register_dataclass(
    RaggedRows, data_fields=[*_ROW_FIELDS, "rows", "group_sizes", "unsort"], meta_fields=[]
)


def qkv_delta(x: jax.Array, lora: LoraBatch, layer: int) -> jax.Array:
    """x [B, T, d] -> the fused q|k|v update [B, T, (H + 2K)·Dh] of each row's adapters."""
    if isinstance(lora, DenseRows):
        if x.shape[1] > 1:
            return _rows_own(x, lora, lora.a_qkv[layer], lora.b_qkv[layer], 3 * lora.rank)
        xa = jnp.einsum("btd,dc->btc", x, lora.a_qkv[layer]) * lora.gates[:, None, :]
        return jnp.einsum("btc,co->bto", xa, lora.b_qkv[layer])
    if isinstance(lora, RaggedRows):
        return _ragged_delta(x, lora, lora.a_qkv[layer], (lora.b_q, lora.b_k, lora.b_v), layer)
    rank = lora.rank
    xa = jnp.einsum("btd,bjdr->btjr", x, lora.a_qkv[layer]) * lora.gates[:, None, :, None]
    parts = [
        jnp.einsum("btjr,bjro->bto", xa[..., i * rank : (i + 1) * rank], b[layer])
        for i, b in enumerate((lora.b_q, lora.b_k, lora.b_v))
    ]
    return jnp.concatenate(parts, axis=-1)


def o_delta(x: jax.Array, lora: LoraBatch, layer: int) -> jax.Array:
    """x [B, T, H·Dh] (attention output) -> the o-projection update [B, T, d]."""
    if isinstance(lora, DenseRows):
        if x.shape[1] > 1:
            return _rows_own(x, lora, lora.a_o[layer], lora.b_o[layer], lora.rank)
        xa = jnp.einsum("btd,dc->btc", x, lora.a_o[layer]) * lora.o_gates[:, None, :]
        return jnp.einsum("btc,co->bto", xa, lora.b_o[layer])
    if isinstance(lora, RaggedRows):
        return _ragged_delta(x, lora, lora.a_o[layer], (lora.b_o,), layer)
    xa = jnp.einsum("btd,bjdr->btjr", x, lora.a_o[layer]) * lora.gates[:, None, :, None]
    return jnp.einsum("btjr,bjro->bto", xa, lora.b_o[layer])


def _rows_own(x: jax.Array, lora: DenseRows, a: jax.Array, b: jax.Array, width: int) -> jax.Array:
    """x·A·B of each row's own adapters, taken out of the dense layout (A [d, N·width],
    B [N·width, O]) inside the step: the prefill path of `DenseRows`."""
    slots = a.shape[1] // width
    a_rows = a.reshape(a.shape[0], slots, width)[:, lora.slots]  # [d, B, J, width]
    b_rows = b.reshape(slots, width, b.shape[1])[lora.slots]  # [B, J, width, O]
    xa = jnp.einsum("btd,dbjc->btjc", x, a_rows) * lora.row_gates[:, None, :, None]
    return jnp.einsum("btjc,bjco->bto", xa, b_rows)


def _ragged_delta(
    x: jax.Array,
    lora: RaggedRows,
    a: jax.Array,
    bs: tuple[tuple[jax.Array, ...], ...],
    layer: int,
) -> jax.Array:
    """Σ_j g·(x Aⱼ)(Bⱼ) by segments: each entry's T positions in slot order, one `ragged_dot`
    per matrix; `bs` (one or three B) each take the next R columns of x·A."""
    t, d = x.shape[1:]
    entries = lora.rows.shape[0]
    sizes = lora.group_sizes * t  # an entry's T positions stay together in its segment
    xs = x[lora.rows].reshape(entries * t, d)
    xa = jax.lax.ragged_dot(xs, a, sizes) * jnp.repeat(lora.gates, t)[:, None]
    rank = lora.rank
    parts = [
        jax.lax.ragged_dot(xa[:, i * rank : (i + 1) * rank], b[layer], sizes)
        for i, b in enumerate(bs)
    ]
    out = jnp.concatenate(parts, axis=-1).reshape(entries, t, -1)
    return out[lora.unsort].sum(axis=1)  # [B, J, T, O] -> each row's sum over its adapters
