"""LoRA adapters for the Llama module: host-side weights, the device-resident adapter bank, and
the per-row low-rank update that lets every row of one batch use its own adapter set.

Design choices (DESIGN.md §3):
- Targets are attention q, k, v, o. Weights are kept on the host in PEFT's orientation
  (A [r, d_in], B [d_out, r]), so what is trained here saves to, and loads from, PEFT's format
  unchanged; the module computes x @ W with W [d_in, d_out], so the update is x·Aᵀ·Bᵀ.
- The bank holds `slots` adapters per layer at one maximum rank R; a smaller rank is zero
  padded (padding adds nothing). Slot 0 is all zeros: rows with fewer adapters than the batch's
  adapter width point their spare entries there with gate 0. Bᵀ is stored pre-scaled by alpha/r,
  so a row's update is Σ_j g_j · (x Aⱼᵀ)(alpha_j/r_j Bⱼᵀ), i.e. W + Σ g·alpha/r·B·A (never merged).
- A for q, k and v is one [d, 3R] block, so the x·Aᵀ of the three targets is one matmul;
  their B stay separate (a block-diagonal B triples its bytes: only "dense" pays that, to make
  three matmuls one).
- The bank is data, not a constant: installing an adapter writes one slot in place (a donated
  update) and never recompiles anything. `gather` turns each batch row's adapters into the
  input the step takes (a `LoraBatch`), once per batch membership.
- Three ways for a batch to read the bank (`LORA_IMPLS`, chosen when the bank is made,
  `new_bank`); all compute the same update, up to summation order:
  "gather": each row's adapters copied out of the bank ([B, J, ...] per layer), then per-row
  batched matmuls. Measured best on the CPU: it touches only the adapters in use.
  "dense": no copies; the step reads the whole bank as plain matrices, the A of every slot side
  by side ([d, N·3R]) and the q|k|v B blocks of each slot on one block diagonal, with a
  [B, N] gate matrix in between: two ordinary GEMMs per target group per layer (fewer, larger
  kernels, which is what a GPU wants), at N/J times the arithmetic of "gather". That is for
  decode (T = 1); a prefill (T > 1) takes each row's own adapters out of the bank in the step,
  since there N·T times the work would cost more than the copies.
  "ragged": Punica's segmented GEMM: rows' (row, adapter) entries sorted by slot and
  multiplied by their group's A and B with `jax.lax.ragged_dot`. On the CPU, JAX lowers it to
  a masked dense dot (G times the work); on a GPU, to XLA's ragged-dot (a grouped GEMM where
  XLA has one for the dtype, else the same dense expansion).

Axis letters: b batch, t positions, j adapters per row, d model, r rank, o output features.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar, get_args

import jax
import jax.numpy as jnp
import numpy as np

from shared.neural.config import LlamaConfig

# The rows' classes and the update math live in lora_rows; model.py imports them from here.
from shared.neural.lora_rows import DenseRows, LoraBatch, RaggedRows
from shared.neural.lora_rows import o_delta as o_delta
from shared.neural.lora_rows import qkv_delta as qkv_delta

TARGETS = ("q", "k", "v", "o")
MAX_ADAPTERS_PER_REQUEST = 3
LoraImpl = Literal["gather", "dense", "ragged"]
LORA_IMPLS: tuple[LoraImpl, ...] = get_args(LoraImpl)


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
    b_o [N, R, d]. N slots, slot 0 all zeros. Each field is a tuple over layers. The layout of
    the "gather" and "ragged" implementations (`impl`); "dense" has its own (`DenseBank`)."""

    a_qkv: tuple[jax.Array, ...]
    b_q: tuple[jax.Array, ...]
    b_k: tuple[jax.Array, ...]
    b_v: tuple[jax.Array, ...]
    a_o: tuple[jax.Array, ...]
    b_o: tuple[jax.Array, ...]
    impl: LoraImpl = "gather"

    @classmethod
    def zeros(
        cls,
        config: LlamaConfig,
        *,
        slots: int,
        rank: int,
        impl: LoraImpl = "gather",
        dtype: Any = jnp.float32,
    ) -> LoraBank:
        if impl not in ("gather", "ragged"):
            raise ValueError(f"a LoraBank serves 'gather' or 'ragged', not {impl!r}")
        shapes = _slot_shapes(config, rank)
        layers = range(config.n_layers)
        return cls(
            **{
                name: tuple(jnp.zeros((slots, *shape), dtype) for _ in layers)
                for name, shape in shapes.items()
            },
            impl=impl,
        )

    @property
    def slots(self) -> int:
        return int(self.a_qkv[0].shape[0])

    @property
    def rank(self) -> int:
        return int(self.b_q[0].shape[1])

    @property
    def dtype(self) -> Any:
        return self.a_qkv[0].dtype

    @staticmethod
    def slot_nbytes(config: LlamaConfig, rank: int) -> int:
        per_layer = sum(int(np.prod(s)) for s in _slot_shapes(config, rank).values())
        return 4 * per_layer * config.n_layers


jax.tree_util.register_dataclass(
    LoraBank, data_fields=["a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o"], meta_fields=["impl"]
)


@dataclass(frozen=True)
class DenseBank:
    """The "dense" layout, read in place by every row: per layer a_qkv [d, N·3R] (slot n's
    q|k|v A in columns n·3R..), b_qkv [N·3R, (H + 2K)·Dh] (slot n's B_q, B_k, B_v on a block
    diagonal in rows n·3R..: the q|k|v update is then one matmul, at 3x the B bytes),
    a_o [H·Dh, N·R] and b_o [N·R, d]. Input features first, so x·A needs no transpose."""

    a_qkv: tuple[jax.Array, ...]
    b_qkv: tuple[jax.Array, ...]
    a_o: tuple[jax.Array, ...]
    b_o: tuple[jax.Array, ...]
    rank: int

    impl: ClassVar[LoraImpl] = "dense"

    @classmethod
    def zeros(
        cls, config: LlamaConfig, *, slots: int, rank: int, dtype: Any = jnp.float32
    ) -> DenseBank:
        d, q_out = config.d_model, config.n_heads * config.head_dim
        qkv_out = q_out + 2 * config.n_kv_heads * config.head_dim
        shapes = {
            "a_qkv": (d, slots * 3 * rank),
            "b_qkv": (slots * 3 * rank, qkv_out),
            "a_o": (q_out, slots * rank),
            "b_o": (slots * rank, d),
        }
        layers = range(config.n_layers)
        fields = {n: tuple(jnp.zeros(s, dtype) for _ in layers) for n, s in shapes.items()}
        return cls(**fields, rank=rank)

    @property
    def slots(self) -> int:
        return int(self.b_o[0].shape[0]) // self.rank

    @property
    def dtype(self) -> Any:
        return self.a_qkv[0].dtype


jax.tree_util.register_dataclass(
    DenseBank, data_fields=["a_qkv", "b_qkv", "a_o", "b_o"], meta_fields=["rank"]
)

Bank = LoraBank | DenseBank
AnyBank = TypeVar("AnyBank", LoraBank, DenseBank)


def new_bank(
    config: LlamaConfig,
    *,
    slots: int,
    rank: int,
    impl: LoraImpl = "gather",
    dtype: Any = jnp.float32,
) -> Bank:
    """An all-zero bank of `slots` adapters (slot 0 included) in the layout `impl` reads.
    `dtype`: the adapters' (and so the LoRA matmuls') dtype; bfloat16 halves the bytes each
    step reads, at bf16 rounding of the update (f32, the default, is exact up to order)."""
    if impl == "dense":
        return DenseBank.zeros(config, slots=slots, rank=rank, dtype=dtype)
    return LoraBank.zeros(config, slots=slots, rank=rank, impl=impl, dtype=dtype)


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
def install(bank: AnyBank, slot: jax.Array, packed: dict[str, jax.Array]) -> AnyBank:
    """Writes one packed adapter (`pack`'s layout) into `slot`, in place (the bank is
    donated), in the bank's own layout."""
    if isinstance(bank, DenseBank):
        return _install_dense(bank, slot, packed)

    def put(buffers: tuple[jax.Array, ...], values: jax.Array) -> tuple[jax.Array, ...]:
        return tuple(
            jax.lax.dynamic_update_index_in_dim(buffer, values[i].astype(buffer.dtype), slot, 0)
            for i, buffer in enumerate(buffers)
        )

    fields = {name: put(getattr(bank, name), packed[name]) for name in packed}
    return LoraBank(**fields, impl=bank.impl)


def _install_dense(bank: DenseBank, slot: jax.Array, packed: dict[str, jax.Array]) -> DenseBank:
    three = 3 * bank.rank

    def put(buffers: tuple[jax.Array, ...], blocks: list[jax.Array], at: tuple[Any, Any]):
        return tuple(
            jax.lax.dynamic_update_slice(buffer, block.astype(buffer.dtype), at)
            for buffer, block in zip(buffers, blocks, strict=True)
        )

    layers = range(len(bank.a_qkv))
    b_qkv = [
        jax.scipy.linalg.block_diag(packed["b_q"][i], packed["b_k"][i], packed["b_v"][i])
        for i in layers
    ]
    return DenseBank(
        a_qkv=put(bank.a_qkv, [packed["a_qkv"][i] for i in layers], (0, slot * three)),
        b_qkv=put(bank.b_qkv, b_qkv, (slot * three, 0)),
        a_o=put(bank.a_o, [packed["a_o"][i] for i in layers], (0, slot * bank.rank)),
        b_o=put(bank.b_o, [packed["b_o"][i] for i in layers], (slot * bank.rank, 0)),
        rank=bank.rank,
    )


def slot_fields(bank: Bank, slot: int) -> dict[str, np.ndarray]:
    """What `install` wrote into `slot`, read back to the host in `pack`'s layout."""
    if isinstance(bank, LoraBank):
        names = ("a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o")
        return {n: np.stack([np.asarray(x[slot]) for x in getattr(bank, n)]) for n in names}
    r, q_out = bank.rank, int(bank.a_o[0].shape[0])
    kv_out = (int(bank.b_qkv[0].shape[1]) - q_out) // 2
    rows = slice(slot * 3 * r, (slot + 1) * 3 * r)
    blocks = [np.asarray(b[rows]) for b in bank.b_qkv]
    return {
        "a_qkv": np.stack([np.asarray(a[:, rows]) for a in bank.a_qkv]),
        "b_q": np.stack([b[:r, :q_out] for b in blocks]),
        "b_k": np.stack([b[r : 2 * r, q_out : q_out + kv_out] for b in blocks]),
        "b_v": np.stack([b[2 * r :, q_out + kv_out :] for b in blocks]),
        "a_o": np.stack([np.asarray(a[:, slot * r : (slot + 1) * r]) for a in bank.a_o]),
        "b_o": np.stack([np.asarray(b[slot * r : (slot + 1) * r]) for b in bank.b_o]),
    }


def relayout(bank: Bank, config: LlamaConfig, impl: LoraImpl) -> Bank:
    """The same adapters in the bank layout of `impl` (a benchmark switches implementations
    on a live engine with it; a service picks one at start)."""
    if bank.impl == impl:
        return bank
    out = new_bank(config, slots=bank.slots, rank=bank.rank, impl=impl, dtype=bank.dtype)
    for slot in range(1, bank.slots):
        out = install(out, np.int32(slot), slot_fields(bank, slot))
    return out


def gather(bank: Bank, slots: Any, gates: Any) -> LoraBatch:
    """Rows' adapters [B, J] of bank slots (0: none) with their gates -> the step's input for
    the bank's implementation: a `LoraBatch` ("gather": copies), `DenseRows` or `RaggedRows`
    (the bank's own arrays: build them again after an `install`, which donates the bank; the
    engine drops its cached input on every install)."""
    if isinstance(bank, DenseBank):
        return _dense_rows(bank, np.asarray(slots), np.asarray(gates, np.float32))
    if bank.impl == "ragged":
        return _ragged_rows(bank, np.asarray(slots), np.asarray(gates, np.float32))
    return _gather_rows(bank, slots, gates)


@jax.jit
def _gather_rows(bank: LoraBank, slots: jax.Array, gates: jax.Array) -> LoraBatch:
    fields = ("a_qkv", "b_q", "b_k", "b_v", "a_o", "b_o")
    taken = {name: tuple(layer[slots] for layer in getattr(bank, name)) for name in fields}
    return LoraBatch(**taken, gates=gates.astype(bank.dtype))


def _dense_rows(bank: DenseBank, slots: np.ndarray, gates: np.ndarray) -> DenseRows:
    per_slot = np.zeros((slots.shape[0], bank.slots), np.float32)
    np.add.at(per_slot, (np.arange(slots.shape[0])[:, None], slots), gates)
    return DenseRows(
        a_qkv=bank.a_qkv,
        b_q=(),
        b_k=(),
        b_v=(),
        a_o=bank.a_o,
        b_o=bank.b_o,
        gates=jnp.asarray(np.repeat(per_slot, 3 * bank.rank, axis=1), bank.dtype),
        b_qkv=bank.b_qkv,
        o_gates=jnp.asarray(np.repeat(per_slot, bank.rank, axis=1), bank.dtype),
        slots=jnp.asarray(slots, jnp.int32),
        row_gates=jnp.asarray(gates, bank.dtype),
        slot_rank=bank.rank,
    )


def _ragged_rows(bank: LoraBank, slots: np.ndarray, gates: np.ndarray) -> RaggedRows:
    flat = slots.reshape(-1)
    order = np.argsort(flat, kind="stable")
    unsort = np.empty_like(order)
    unsort[order] = np.arange(order.size)
    return RaggedRows(
        a_qkv=bank.a_qkv,
        b_q=bank.b_q,
        b_k=bank.b_k,
        b_v=bank.b_v,
        a_o=bank.a_o,
        b_o=bank.b_o,
        gates=jnp.asarray(gates.reshape(-1)[order], bank.dtype),
        rows=jnp.asarray((order // slots.shape[1]).astype(np.int32)),
        group_sizes=jnp.asarray(np.bincount(flat, minlength=bank.slots).astype(np.int32)),
        unsort=jnp.asarray(unsort.reshape(slots.shape).astype(np.int32)),
    )


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
