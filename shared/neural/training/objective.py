"""The frozen base, the forward pass with a trainable adapter, the loss and the jitted step.

- The base's parameters are an input of the compiled functions, never a constant (that would
  put 540 MB into the program) and never differentiated: gradients are taken with respect to
  the LoRA parameters only, and the base's arrays are passed by reference on every step.
- Loss of a batch of rows i with weights wᵢ (0 for padding rows), λ_D and λ_U the desirable
  and undesirable weights, β the KTO beta:
      (λ_D·Σ_preferred wᵢ·NLLᵢ + λ_U·Σ_undesirable wᵢ·sigmoid(β·rᵢ)) / Σ wᵢ
      + l2·Σ‖alpha/r·B·A‖²
  NLLᵢ is the mean cross-entropy over the target's tokens; rᵢ = log p(yᵢ) - log p_base(yᵢ),
  the summed log-probability of the target under the adapter minus under the frozen base.
  The undesirable term is KTO's loss for an undesirable example, λ_U·(1 - sigmoid(β·(z₀ - r))),
  with the reference point z₀ taken as 0: the policy starts at the base, and KTO's estimate of
  z₀ from mismatched pairs is noise on a handful of events. It is bounded: once the answer is
  well below the base (r ≪ -1/β) it stops pushing, unlike unlikelihood terms, which wreck a
  small model.
- The base (gate 0) gives the reference log-probabilities: the same compiled function with the
  gate at 0 adds exactly nothing to W·x.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from shared.neural.config import LlamaConfig
from shared.neural.model import KVCache, Llama
from shared.neural.training.params import Params, lora_batch, update_norm_squared
from shared.neural.training.samples import EncodedText, pack_rows


@dataclass(frozen=True)
class FrozenBase:
    """The base model split into its structure (static) and its parameters (an input)."""

    config: LlamaConfig
    graphdef: Any
    state: Any

    @classmethod
    def from_model(cls, model: Llama) -> FrozenBase:
        graphdef, state = nnx.split(model)
        return cls(model.config, graphdef, state)

    @classmethod
    def from_state(cls, config: LlamaConfig, state: Any) -> FrozenBase:
        """From a split model's state (what `forward_fn` returns), with the structure taken
        from an abstract model: no second copy of the weights."""
        graphdef, _ = nnx.split(nnx.eval_shape(lambda: Llama(config, rngs=nnx.Rngs(0))))
        return cls(config, graphdef, state)


@dataclass(frozen=True)
class Objective:
    """The loss's coefficients, as traced scalars (changing them recompiles nothing)."""

    scale: jax.Array
    gate: jax.Array
    kto_beta: jax.Array
    desirable_weight: jax.Array
    undesirable_weight: jax.Array
    l2: jax.Array


jax.tree_util.register_dataclass(
    Objective,
    data_fields=["scale", "gate", "kto_beta", "desirable_weight", "undesirable_weight", "l2"],
    meta_fields=[],
)


@dataclass(frozen=True)
class RowWeights:
    """Per row: its weight (0: padding), whether it is undesirable (1.0) or preferred (0.0),
    and the frozen base's summed log-probability of its target (undesirable rows)."""

    weights: jax.Array
    undesirable: jax.Array
    reference: jax.Array


jax.tree_util.register_dataclass(
    RowWeights, data_fields=["weights", "undesirable", "reference"], meta_fields=[]
)


@dataclass(frozen=True)
class Batch:
    """A training batch: the padded texts (`samples.Rows`) and their rows' weights."""

    tokens: jax.Array
    labels: jax.Array
    mask: jax.Array
    rows: RowWeights


jax.tree_util.register_dataclass(
    Batch, data_fields=["tokens", "labels", "mask", "rows"], meta_fields=[]
)


def _token_logprobs(
    graphdef: Any,
    state: Any,
    params: Params,
    scale: jax.Array,
    gate: jax.Array,
    tokens: jax.Array,
    labels: jax.Array,
) -> jax.Array:
    """log p(labels[b, t] | tokens[b, ≤t]) [B, T] under the base plus the adapter at `gate`."""
    model = nnx.merge(graphdef, state)
    batch, length = tokens.shape
    positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
    cache = KVCache.zeros(model.config, batch=batch, length=length)
    lora = lora_batch(params, scale, gate, batch)
    logits, _ = model(tokens, positions, cache, length, lora=lora)
    return -optax.softmax_cross_entropy_with_integer_labels(logits, labels)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def sequence_logprobs(
    graphdef: Any,
    state: Any,
    params: Params,
    scale: jax.Array,
    gate: jax.Array,
    tokens: jax.Array,
    labels: jax.Array,
    mask: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Per row: the summed log-probability of its masked (target) tokens, and their count."""
    logprobs = _token_logprobs(graphdef, state, params, scale, gate, tokens, labels)
    return jnp.sum(logprobs * mask, axis=-1), jnp.sum(mask, axis=-1)


def data_loss(
    sums: jax.Array,
    counts: jax.Array,
    rows: RowWeights,
    objective: Objective,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(the weighted loss of the rows, its SFT part, its KTO part), from each row's summed
    target log-probability and token count (see the module's docstring)."""
    nll = -sums / jnp.maximum(counts, 1.0)
    preferred = rows.weights * (1.0 - rows.undesirable)
    undesirable = rows.weights * rows.undesirable
    total_weight = jnp.maximum(jnp.sum(rows.weights), 1e-6)
    sft = jnp.sum(preferred * nll) / total_weight
    kto = jnp.sum(undesirable * jax.nn.sigmoid(objective.kto_beta * (sums - rows.reference)))
    kto = kto / total_weight
    loss = objective.desirable_weight * sft + objective.undesirable_weight * kto
    return loss, sft, kto


def _loss(
    params: Params, graphdef: Any, state: Any, batch: Batch, objective: Objective
) -> tuple[jax.Array, dict[str, jax.Array]]:
    logprobs = _token_logprobs(
        graphdef, state, params, objective.scale, objective.gate, batch.tokens, batch.labels
    )
    sums = jnp.sum(logprobs * batch.mask, axis=-1)
    counts = jnp.sum(batch.mask, axis=-1)
    data, sft, kto = data_loss(sums, counts, batch.rows, objective)
    penalty = objective.l2 * update_norm_squared(params, objective.scale)
    return data + penalty, {"sft": sft, "kto": kto, "l2": penalty}


@functools.lru_cache(maxsize=16)
def optimizer(learning_rate: float, max_grad_norm: float) -> optax.GradientTransformation:
    """Adam with global-norm clipping; one object per setting, so the jitted step that takes
    it as a static argument compiles once per setting. No weight decay: the loss's L2 term on
    the update does that job."""
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))


@functools.partial(jax.jit, static_argnames=("graphdef", "transform"))
def train_step(
    graphdef: Any,
    transform: optax.GradientTransformation,
    state: Any,
    params: Params,
    opt_state: Any,
    batch: Batch,
    objective: Objective,
) -> tuple[Params, Any, jax.Array, dict[str, jax.Array]]:
    """One optimizer step on the LoRA parameters: (params, opt_state, loss, loss parts)."""
    (loss, parts), grads = jax.value_and_grad(_loss, has_aux=True)(
        params, graphdef, state, batch, objective
    )
    updates, opt_state = transform.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, parts


def score_texts(
    base: FrozenBase,
    texts: Sequence[EncodedText],
    params: Params,
    *,
    scale: float,
    gate: float,
    batch_size: int,
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's summed target log-probability and target token count under the base plus
    `params` at `gate` (gate 0: the base alone), in batches of one shape."""
    sums, counts = [], []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        rows = pack_rows(chunk, batch_size=batch_size, length=length)
        row_sums, row_counts = sequence_logprobs(
            base.graphdef,
            base.state,
            params,
            jnp.float32(scale),
            jnp.float32(gate),
            rows.tokens,
            rows.labels,
            rows.mask,
        )
        sums.append(np.asarray(row_sums)[: len(chunk)])
        counts.append(np.asarray(row_counts)[: len(chunk)])
    if not sums:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(sums), np.concatenate(counts)
