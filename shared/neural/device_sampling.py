"""Sampling on the device, inside the decode loop: greedy, temperature, exact top-k and top-p,
with a key per request so a seed gives the same tokens whatever else is in the batch.

The host sampler (`sampling.sample`) needs each row's logits [V] on the host every token; the
multi-step decode loop keeps them on the device, so it samples there. Neither top-k nor top-p
sorts the vocabulary (a sort of 49k floats per row per token costs more than the rest of a
small model's step on a CPU): each finds its threshold by bisection over the floats' order-
preserving integer encoding, 32 vectorised passes over [B, V]. top-k keeps the logits at or
above the k-th largest; top-p keeps the probabilities at or above the largest threshold whose
kept mass reaches top_p, i.e. the most likely tokens up to and including the one that crosses
it, as the host does (ties at the crossing value are all kept). The draw is Gumbel-max over the
kept, tempered logits: an exact sample from their softmax without normalising.

Keys: a request's key is PRNGKey(seed) (threefry, the raw uint32 pair), and the token at index
n of its completion is drawn with fold_in(key, n): independent of the batch, the slot and how
many steps each device call runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from shared.neural.sampling import SamplingParams

_BITS = 32


@dataclass(frozen=True)
class SamplingRows:
    """Per-row sampling inputs [B]: temperature (0: greedy), top_k (0: none), top_p (1: none),
    key [B, 2] uint32."""

    temperature: jax.Array
    top_k: jax.Array
    top_p: jax.Array
    key: jax.Array

    @classmethod
    def build(
        cls, params: list[SamplingParams | None], keys: list[np.ndarray | None]
    ) -> SamplingRows:
        """Host arrays for a batch; None rows (padding) decode greedily."""
        n = len(params)
        temperature = np.zeros(n, np.float32)
        top_k = np.zeros(n, np.int32)
        top_p = np.ones(n, np.float32)
        key = np.zeros((n, 2), np.uint32)
        for row, (p, k) in enumerate(zip(params, keys, strict=True)):
            if p is not None and k is not None:
                temperature[row], top_k[row], top_p[row] = p.temperature, p.top_k, p.top_p
                key[row] = k
        return cls(temperature, top_k, top_p, key)  # type: ignore[arg-type]

    @property
    def any_sampled(self) -> bool:
        return bool(np.any(np.asarray(self.temperature) > 0))


jax.tree_util.register_dataclass(
    SamplingRows, data_fields=["temperature", "top_k", "top_p", "key"], meta_fields=[]
)


def request_key(seed: int | None) -> np.ndarray:
    """PRNGKey(seed)'s raw threefry pair; a fresh random seed when there is none."""
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    seed &= (1 << 64) - 1
    return np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32)


def _ordered(x: jax.Array) -> jax.Array:
    """f32 -> uint32 with the same order (negative floats have their bits reversed)."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    negative = (bits >> 31) == 1
    return jnp.where(negative, ~bits, bits | jnp.uint32(1 << 31))


def _largest_threshold(keys: jax.Array, holds: object) -> jax.Array:
    """Per row, the largest t (uint32) for which `holds(keys >= t)` [B, V] -> [B] is true;
    `holds` is monotone (true at t = 0) so bisection finds it in 32 passes."""

    def body(_: int, bounds: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        lo, hi = bounds  # holds(lo) is true; every t > hi is false
        gap = hi - lo
        mid = lo + gap // 2 + gap % 2  # ceil, without overflowing uint32
        ok = holds(keys >= mid[:, None])  # type: ignore[operator]
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

    rows = keys.shape[0]
    lo = jnp.zeros(rows, jnp.uint32)
    hi = jnp.full(rows, 0xFFFFFFFF, jnp.uint32)
    lo, _ = jax.lax.fori_loop(0, _BITS, body, (lo, hi))
    return lo


def _kept(logits: jax.Array, rows: SamplingRows) -> jax.Array:
    """Mask [B, V] of the tokens each row may draw: its top-k, then the nucleus of what is left
    (tempered), as `sampling.sample` computes them."""
    vocab = logits.shape[-1]
    ordered = _ordered(logits)
    k = jnp.where(rows.top_k > 0, jnp.minimum(rows.top_k, vocab), vocab)
    kth = _largest_threshold(ordered, lambda kept: kept.sum(-1) >= k)
    kept = ordered >= kth[:, None]
    temperature = jnp.where(rows.temperature > 0, rows.temperature, 1.0)[:, None]
    scaled = jnp.where(kept, logits / temperature, -jnp.inf)
    probs = jax.nn.softmax(scaled, axis=-1)
    nucleus = _largest_threshold(
        _ordered(probs),
        lambda above: jnp.where(above, probs, 0.0).sum(-1) >= rows.top_p,
    )
    in_nucleus = (_ordered(probs) >= nucleus[:, None]) | (rows.top_p >= 1.0)[:, None]
    return kept & in_nucleus


def choose(logits: jax.Array, rows: SamplingRows, index: jax.Array) -> jax.Array:
    """The next token [B] of each row from logits [B, V] (f32); `index` [B]: the position of
    that token in the row's completion (its draw's fold_in)."""
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)

    def sampled() -> jax.Array:
        keys = jax.random.wrap_key_data(rows.key, impl="threefry2x32")
        step_keys = jax.vmap(jax.random.fold_in)(keys, index.astype(jnp.uint32))
        noise = jax.vmap(lambda key: jax.random.gumbel(key, logits.shape[-1:], jnp.float32))(
            step_keys
        )
        temperature = jnp.where(rows.temperature > 0, rows.temperature, 1.0)[:, None]
        scores = jnp.where(_kept(logits, rows), logits / temperature + noise, -jnp.inf)
        drawn = jnp.argmax(scores, axis=-1).astype(jnp.int32)
        return jnp.where(rows.temperature > 0, drawn, greedy)

    # The batch pays for sampling only when one of its rows samples.
    return jax.lax.cond(jnp.any(rows.temperature > 0), sampled, lambda: greedy)
