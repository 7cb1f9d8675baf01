"""The engine's two device programs over one donated KV cache: prefill into slots, and a decode
loop that runs several steps per call.

Prefill runs a [B, T] batch of right-padded prompts straight into their slots and picks each
row's first token on the device. Decode runs up to `horizon` steps in one `lax.while_loop`:
each step feeds every row its previous token, picks the next on the device (greedy or sampled,
`device_sampling.choose`), and retires a row when it draws a stop token or reaches its token
budget. A retired row's position moves past the cache's end, so its later writes are dropped,
and the loop ends early when every row is retired. The host then streams what the call produced,
one token per row per step, and handles stop strings, deadlines and cancellation between calls:
within one horizon. One call per token cost a host round trip per token (measured on an H200:
3.6 ms a step from the host against 1.0 ms inside the loop, at batch 1).

Both programs return the last step's logits too: a row whose sampling needs the host (a logit
bias, copy-aware decoding) runs one step per call and is sampled from them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from shared.neural.device_sampling import SamplingRows, choose
from shared.neural.lora import LoraBatch
from shared.neural.model import KVCache, Llama
from shared.neural.programs import Programs


@dataclass(frozen=True)
class DecodeOut:
    """tokens [B, horizon] (-1 where a row produced nothing), logits [B, V] of the last step."""

    tokens: jax.Array
    logits: jax.Array


def step_fn(model: Llama) -> tuple[Any, Any]:
    """One jitted forward step (prefill or decode) with the cache donated, returning the logits
    and their argmax: the reference the engine's programs are tested against, and what the
    training and adapter tests drive directly."""
    graphdef, state = nnx.split(model)

    @functools.partial(jax.jit, donate_argnums=(3,), static_argnames=("attend_len",))
    def step(
        state: Any,
        tokens: jax.Array,
        positions: jax.Array,
        cache: KVCache,
        rows: jax.Array | None,
        last: jax.Array,
        lora: LoraBatch | None,
        *,
        attend_len: int,
    ) -> tuple[jax.Array, jax.Array, KVCache]:
        model = nnx.merge(graphdef, state)
        logits, cache = model(tokens, positions, cache, attend_len, rows=rows, last=last, lora=lora)
        return logits, jnp.argmax(logits, axis=-1).astype(jnp.int32), cache

    return state, step


def make_runner(
    model: Llama, *, max_seq_len: int, keep_executables: bool = True
) -> tuple[Any, Programs, Programs]:
    """(state, prefill, decode): functions of the model's state, compiled ahead of time per
    argument signature and kept as executables (`programs.Programs`); the cache (argument 3) is
    donated, so both update it in place."""
    graphdef, state = nnx.split(model)

    @functools.partial(jax.jit, donate_argnums=(3,), static_argnames=("attend_len",))
    def prefill(
        state: Any,
        tokens: jax.Array,
        positions: jax.Array,
        cache: KVCache,
        rows: jax.Array,
        last: jax.Array,
        lora: LoraBatch | None,
        sampling: SamplingRows,
        *,
        attend_len: int,
    ) -> tuple[jax.Array, jax.Array, KVCache]:
        """Prompts [B, T] into cache rows `rows` [B]; `last` [B]: each prompt's last index.
        Returns the logits at `last` [B, V], the first tokens [B] and the cache."""
        model = nnx.merge(graphdef, state)
        logits, cache = model(tokens, positions, cache, attend_len, rows=rows, last=last, lora=lora)
        first = choose(logits, sampling, jnp.zeros(tokens.shape[0], jnp.int32))
        return logits, first, cache

    @functools.partial(jax.jit, donate_argnums=(3,), static_argnames=("attend_len", "horizon"))
    def decode(
        state: Any,
        tokens: jax.Array,
        positions: jax.Array,
        cache: KVCache,
        rows: jax.Array | None,
        lora: LoraBatch | None,
        sampling: SamplingRows,
        produced: jax.Array,
        budget: jax.Array,
        stop_ids: jax.Array,
        steps: jax.Array,
        *,
        attend_len: int,
        horizon: int,
    ) -> tuple[DecodeOut, KVCache]:
        """Up to `steps` (<= horizon) decode steps for rows [B] whose last token is `tokens`
        at `positions`; `produced` [B]: tokens each row has generated so far (a padding row:
        its budget), `budget` [B]: its max_tokens. Positions at or past the cache's end are
        padding rows: nothing is written or produced for them."""
        model = nnx.merge(graphdef, state)
        batch = tokens.shape[0]
        vocab = model.config.vocab_size

        def body(carry: tuple[Any, ...]) -> tuple[Any, ...]:
            i, token, position, count, done, out, _, cache = carry
            logits, cache = model(
                token[:, None], position[:, None], cache, attend_len, rows=rows,
                last=jnp.zeros(batch, jnp.int32), lora=lora,
            )  # fmt: skip
            chosen = choose(logits, sampling, count)
            out = out.at[:, i].set(jnp.where(done, -1, chosen))
            count = count + (~done)
            done = done | jnp.isin(chosen, stop_ids) | (count >= budget)
            position = jnp.where(done, max_seq_len, position + 1)
            return i + 1, chosen, position, count, done, out, logits, cache

        def more(carry: tuple[Any, ...]) -> jax.Array:
            i, done = carry[0], carry[4]
            return (i < steps) & ~jnp.all(done)

        start = (
            jnp.int32(0),
            tokens,
            positions,
            produced,
            positions >= max_seq_len,
            jnp.full((batch, horizon), -1, jnp.int32),
            jnp.zeros((batch, vocab), jnp.float32),
            cache,
        )
        _, _, _, _, _, out, logits, cache = jax.lax.while_loop(more, body, start)
        return DecodeOut(out, logits), cache

    # What the programs bake in that their arguments' shapes do not all show (rope theta, the
    # norm's epsilon, the cache's end that retires a row).
    identity = repr((type(model).__name__, model.config, max_seq_len))
    fixed = (0, 3)  # the model's state and the KV cache: the same at every call
    keep = keep_executables
    return (
        state,
        Programs(prefill, "prefill", identity=identity, fixed=fixed, keep=keep),
        Programs(decode, "decode", identity=identity, fixed=fixed, keep=keep),
    )


jax.tree_util.register_dataclass(DecodeOut, data_fields=["tokens", "logits"], meta_fields=[])
