"""Greedy batched generation over the jitted step: the reference path the engine is tested
against (the continuous-batching engine reuses the same step function)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from shared.neural.config import LlamaConfig
from shared.neural.model import KVCache

PREFILL_BUCKETS = (32, 64, 128, 256, 512, 1024, 2048)


def bucket(length: int) -> int:
    """Prefill lengths are padded to a few shapes so each compiles once."""
    for size in PREFILL_BUCKETS:
        if length <= size:
            return size
    raise ValueError(f"prompt of {length} tokens exceeds the largest prefill bucket")


def greedy(
    step: Any,
    state: Any,
    config: LlamaConfig,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_id: int,
    pad_id: int = 0,
) -> list[list[int]]:
    """Generates for all prompts as one batch; each row stops at `stop_id` on its own."""
    batch = len(prompts)
    width = bucket(max(len(p) for p in prompts))
    cache = KVCache.zeros(config, batch=batch, length=width + max_new_tokens)
    tokens = np.full((batch, width), pad_id, np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, : len(prompt)] = prompt
    positions = np.broadcast_to(np.arange(width, dtype=np.int32), (batch, width))
    logits, cache = step(state, jnp.asarray(tokens), jnp.asarray(positions), cache)
    lengths = np.array([len(p) for p in prompts], np.int32)
    last = np.asarray(logits)[np.arange(batch), lengths - 1]
    outputs: list[list[int]] = [[] for _ in prompts]
    done = np.zeros(batch, bool)
    for _ in range(max_new_tokens):
        chosen = last.argmax(axis=-1).astype(np.int32)
        for row in range(batch):
            if not done[row]:
                if chosen[row] == stop_id:
                    done[row] = True
                else:
                    outputs[row].append(int(chosen[row]))
        if done.all():
            break
        logits, cache = step(
            state, jnp.asarray(chosen[:, None]), jnp.asarray(lengths[:, None]), cache
        )
        lengths = lengths + 1
        last = np.asarray(logits)[:, 0]
    return outputs
