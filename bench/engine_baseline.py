"""The in-run baseline of `bench/engine_random.py`: Hugging Face transformers' `generate` on the
same device and shapes, where PyTorch and transformers import (a GPU machine has them; this
project does not depend on either, and the benchmark runs without them).

A `LlamaForCausalLM` of the same dimensions with its own random init, f32, greedy,
`min_new_tokens = max_new_tokens` so no row stops early. Batch-1 decode is
(new - 1) / (time of `new` tokens - time of 1 token): prefill and the first token cancel out,
as the engine's figure counts from its first streamed token. Aggregate is one batched call of
n equal-length prompts: n · new tokens over its time, prefill included, as the engine's.
On a GPU it runs after the engine, beside JAX's default preallocation of 75 % of the memory:
the quarter left (20 GB and more on an H100) holds this model at batch 64 many times over.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from typing import Any

from shared.neural.config import LlamaConfig


def transformers_generate(
    config: LlamaConfig, *, prompt_tokens: int, new_tokens: int, batches: Sequence[int], seed: int
) -> dict[str, Any]:
    """{"device", "torch", "transformers", "figures": {decode_b1_tok_s, aggregate_<n>_tok_s}},
    or {"skipped": why} when PyTorch or transformers is missing."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"{' and '.join(missing)} not installed"}
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # generation-config chatter on random weights
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.d_model,
            intermediate_size=config.d_ff,
            num_hidden_layers=config.n_layers,
            num_attention_heads=config.n_heads,
            num_key_value_heads=config.n_kv_heads,
            rope_theta=config.rope_theta,
            rms_norm_eps=config.rms_eps,
            max_position_embeddings=config.max_seq_len,
            tie_word_embeddings=config.tie_embeddings,
        )
    )
    model = model.to(device=device, dtype=torch.float32).eval()

    def timed(batch: int, new: int) -> float:
        ids = torch.randint(0, config.vocab_size, (batch, prompt_tokens), device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=new,
                min_new_tokens=new,
                pad_token_id=0,
            )
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        assert out.shape == (batch, prompt_tokens + new), out.shape
        return elapsed

    figures: dict[str, float] = {}
    for batch in batches:
        timed(batch, 4)  # warm: kernels, allocator, autotuning for this batch size
        if batch == 1:
            first = min(timed(1, 1) for _ in range(3))
            figures["decode_b1_tok_s"] = (new_tokens - 1) / (timed(1, new_tokens) - first)
        figures[f"aggregate_{batch}_tok_s"] = batch * new_tokens / timed(batch, new_tokens)
    return {
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "figures": figures,
    }
