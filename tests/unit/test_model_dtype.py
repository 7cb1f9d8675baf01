"""The model's dtypes on a tiny config, on the CPU: bf16 (weights, activations and KV cache in
bf16, f32 accumulation, f32 logits) against the f32 reference on the same weights, for prefill
and for decode steps through the cache, with and without LoRA adapters; and the f32 default
against an independent NumPy float64 forward, so the bf16 option changed nothing there."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from shared.neural.config import LlamaConfig
from shared.neural.lora import LoraBank, gather, install, pack, random_lora
from shared.neural.model import KVCache, Llama, build_model, forward_fn, inference_dtype
from shared.platform.settings import Settings

# No mixed-dtype scatter into the cache: JAX warns on one (an error in its future releases).
pytestmark = pytest.mark.filterwarnings("error:scatter inputs have incompatible types")

CONFIG = LlamaConfig(
    vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, max_seq_len=256
)
PROMPT, DECODE_STEPS, BATCH = 24, 8, 2
# bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2 %) per stored value. Measured on
# these weights over 4 seeds, as a share of the f32 logits' standard deviation: max |Δ| ≤ 4.2 %
# and RMS ≤ 0.9 % on the base model; with the two large adapters below, max ≤ 8.6 %, RMS ≤ 2.0 %.
# The tolerances leave room for other CPUs' kernels and summation orders; a wrong cast or a
# mixed-dtype path is off by the logits' whole scale. Top-1 may differ only where the f32
# reference's best two logits are closer than the max tolerance.
BF16_MAX_TOLERANCE = 0.15
BF16_RMS_TOLERANCE = 0.04
# The default path is f32 end to end; against float64 NumPy only summation order differs.
F32_TOLERANCE = 1e-4


def _tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights in the checkpoint's names. The embedding (tied: also the output
    projection) is scaled so the logits spread like a trained model's (std ≈ 2, not ≈ 0.1),
    and the norm weights are not all ones, so a rounding error anywhere shows in the logits."""
    rng = np.random.default_rng(seed)
    c = CONFIG
    qkv = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim

    def normal(std: float, *shape: int) -> np.ndarray:
        return rng.normal(0.0, std, shape).astype(np.float32)

    tensors = {"embed": normal(0.3, c.vocab_size, c.d_model), "final_norm": 1 + normal(0.1, 64)}
    for i in range(c.n_layers):
        p = f"layers.{i}."
        tensors[p + "attn_norm"] = 1 + normal(0.1, c.d_model)
        tensors[p + "wqkv"] = normal(0.08, c.d_model, qkv)
        tensors[p + "wo"] = normal(0.08, c.n_heads * c.head_dim, c.d_model)
        tensors[p + "mlp_norm"] = 1 + normal(0.1, c.d_model)
        tensors[p + "w_gate_up"] = normal(0.08, c.d_model, 2 * c.d_ff)
        tensors[p + "w_down"] = normal(0.08, c.d_ff, c.d_model)
    return tensors


def _run(
    model: Llama, tokens: np.ndarray, lengths: np.ndarray, forced: np.ndarray, lora: Any = None
) -> tuple[list[np.ndarray], KVCache]:
    """Prefill `tokens` (right padded to PROMPT; row i has lengths[i] tokens), then one decode
    step per column of `forced` [B, steps] (teacher forcing: both dtypes see the same tokens,
    so a difference does not compound). Returns each call's logits at the rows' last position
    [B, V] and the final cache."""
    graphdef, state = nnx.split(model)

    @functools.partial(jax.jit, donate_argnums=(3,))  # as the engine runs it: cache donated
    def step(state: Any, tokens: Any, positions: Any, cache: KVCache, last: Any) -> Any:
        merged = nnx.merge(graphdef, state)
        return merged(tokens, positions, cache, PROMPT + 16, last=last, lora=lora)

    cache = KVCache.zeros(CONFIG, batch=BATCH, length=PROMPT + 16, dtype=model.dtype)
    positions = np.broadcast_to(np.arange(PROMPT, dtype=np.int32), (BATCH, PROMPT))
    logits, cache = step(state, tokens, positions, cache, lengths - 1)
    out = [np.asarray(logits)]
    for i in range(forced.shape[1]):
        at = (lengths + i)[:, None]
        logits, cache = step(state, forced[:, i : i + 1], at, cache, np.zeros(BATCH, np.int32))
        out.append(np.asarray(logits))
    return out, cache


def _inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, CONFIG.vocab_size, (BATCH, PROMPT)).astype(np.int32)
    lengths = np.array([PROMPT, PROMPT - 7], np.int32)
    tokens[1, lengths[1] :] = 0  # padding past the shorter row's end
    forced = rng.integers(1, CONFIG.vocab_size, (BATCH, DECODE_STEPS)).astype(np.int32)
    return tokens, lengths, forced


def _assert_close_to_reference(ours: list[np.ndarray], reference: list[np.ndarray]) -> None:
    for call, (got, want) in enumerate(zip(ours, reference, strict=True)):
        assert got.dtype == np.float32
        scale = float(want.std())
        assert scale > 1.0  # the logits spread: the tolerance is not vacuous
        error = float(np.abs(got - want).max())
        assert error > 0  # the bf16 path did round: this is not the f32 model again
        assert error <= BF16_MAX_TOLERANCE * scale, f"call {call}: max |Δ| {error:.3f}"
        rms = float(np.sqrt(((got - want) ** 2).mean()))
        assert rms <= BF16_RMS_TOLERANCE * scale, f"call {call}: RMS Δ {rms:.3f}"
        top2 = np.sort(want, axis=-1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > 2 * BF16_MAX_TOLERANCE * scale
        agree = got.argmax(-1) == want.argmax(-1)
        assert agree[clear].all(), f"call {call}: top-1 differs where f32's margin is clear"
    firsts = np.stack([o.argmax(-1) for o in ours]) == np.stack([r.argmax(-1) for r in reference])
    assert firsts.mean() >= 0.9  # top-1 agrees at (nearly) every position


def test_bf16_model_stores_bf16_and_returns_f32_logits() -> None:
    model = build_model(CONFIG, _tensors(), dtype=jnp.bfloat16)
    assert model.dtype == jnp.bfloat16
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert {p.dtype for p in params} == {jnp.dtype(jnp.bfloat16)}
    random_init = build_model(CONFIG, seed=3, dtype=jnp.bfloat16)
    assert {p.dtype for p in jax.tree.leaves(nnx.state(random_init, nnx.Param))} == {
        jnp.dtype(jnp.bfloat16)
    }
    tokens, lengths, forced = _inputs()
    logits, cache = _run(model, tokens, lengths, forced)
    assert all(call.dtype == np.float32 for call in logits)
    assert cache.dtype == jnp.bfloat16
    assert {a.dtype for a in (*cache.k, *cache.v)} == {jnp.dtype(jnp.bfloat16)}


def test_bf16_prefill_and_decode_logits_match_the_f32_reference() -> None:
    tensors = _tensors()
    tokens, lengths, forced = _inputs()
    reference, _ = _run(build_model(CONFIG, tensors), tokens, lengths, forced)
    ours, _ = _run(build_model(CONFIG, tensors, dtype=jnp.bfloat16), tokens, lengths, forced)
    _assert_close_to_reference(ours, reference)


def test_bf16_model_with_lora_adapters_matches_the_f32_reference() -> None:
    """The adapters' updates are computed in the bank's dtype (f32) and added to the
    bf16 model's f32 accumulators: the same tolerance holds with two adapters per row."""
    bank = LoraBank.zeros(CONFIG, slots=3, rank=4)
    for slot in (1, 2):
        adapter = random_lora(CONFIG, rank=4, alpha=8, seed=slot, scale=0.2)
        packed = pack(adapter, CONFIG, rank=4)
        bank = install(bank, jnp.int32(slot), {k: jnp.asarray(v) for k, v in packed.items()})
    lora = gather(bank, jnp.array([[1, 2], [2, 0]], jnp.int32), jnp.array([[1.0, 0.5], [1.0, 0]]))
    tensors = _tensors()
    tokens, lengths, forced = _inputs()
    reference, _ = _run(build_model(CONFIG, tensors), tokens, lengths, forced, lora)
    base, _ = _run(build_model(CONFIG, tensors), tokens, lengths, forced)
    assert np.abs(reference[0] - base[0]).max() > 0.5  # the adapters change the logits
    bf16 = build_model(CONFIG, tensors, dtype=jnp.bfloat16)
    ours, _ = _run(bf16, tokens, lengths, forced, lora)
    _assert_close_to_reference(ours, reference)


def _numpy_forward(tensors: dict[str, np.ndarray], tokens: np.ndarray) -> np.ndarray:
    """An independent float64 Llama forward (causal, full sequence, no cache): [T] -> [T, V]."""
    c = CONFIG
    t = {name: value.astype(np.float64) for name, value in tensors.items()}
    hq, kv, hd = c.n_heads, c.n_kv_heads, c.head_dim

    def norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + c.rms_eps) * weight

    n = len(tokens)
    inv_freq = 1.0 / c.rope_theta ** (np.arange(0, hd, 2) / hd)
    angles = np.arange(n)[:, None] * inv_freq
    cos, sin = np.cos(np.concatenate([angles] * 2, -1)), np.sin(np.concatenate([angles] * 2, -1))

    def rope(x: np.ndarray) -> np.ndarray:  # [T, N, Dh]
        rotated = np.concatenate([-x[..., hd // 2 :], x[..., : hd // 2]], -1)
        return x * cos[:, None] + rotated * sin[:, None]

    x = t["embed"][tokens]
    causal = np.tril(np.ones((n, n), bool))
    for i in range(c.n_layers):
        p = f"layers.{i}."
        qkv = norm(x, t[p + "attn_norm"]) @ t[p + "wqkv"]
        q = rope(qkv[:, : hq * hd].reshape(n, hq, hd))
        k = rope(qkv[:, hq * hd : (hq + kv) * hd].reshape(n, kv, hd))
        v = qkv[:, (hq + kv) * hd :].reshape(n, kv, hd)
        k, v = np.repeat(k, hq // kv, axis=1), np.repeat(v, hq // kv, axis=1)
        scores = np.einsum("qnh,snh->nqs", q, k) / np.sqrt(hd)
        scores = np.where(causal, scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        x = x + np.einsum("nqs,snh->qnh", weights, v).reshape(n, hq * hd) @ t[p + "wo"]
        gate_up = norm(x, t[p + "mlp_norm"]) @ t[p + "w_gate_up"]
        gate, up = gate_up[:, : c.d_ff], gate_up[:, c.d_ff :]
        x = x + (gate / (1 + np.exp(-gate)) * up) @ t[p + "w_down"]
    return norm(x, t["final_norm"]) @ t["embed"].T


def test_f32_default_is_unchanged_and_matches_an_independent_forward() -> None:
    tensors = _tensors()
    model = build_model(CONFIG, tensors)
    assert model.dtype == jnp.float32
    assert {p.dtype for p in jax.tree.leaves(nnx.state(model, nnx.Param))} == {
        jnp.dtype(jnp.float32)
    }
    assert KVCache.zeros(CONFIG, batch=1, length=8).dtype == jnp.float32
    state, step = forward_fn(model)
    tokens, _, forced = _inputs()
    positions = np.arange(PROMPT, dtype=np.int32)[None]
    cache = KVCache.zeros(CONFIG, batch=1, length=PROMPT + DECODE_STEPS)
    logits, cache = step(state, tokens[:1], positions, cache)
    assert logits.dtype == jnp.float32 and cache.dtype == jnp.float32
    sequence = tokens[0]
    for i in range(DECODE_STEPS):  # decode through the cache, one token a call
        step_logits, cache = step(state, forced[:1, i : i + 1], np.array([[PROMPT + i]]), cache)
        sequence = np.append(sequence, forced[0, i])
        logits = jnp.concatenate([logits, step_logits], axis=1)
    expected = _numpy_forward(tensors, sequence)
    np.testing.assert_allclose(np.asarray(logits[0]), expected, atol=F32_TOLERANCE, rtol=0)


def test_inference_dtype_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERENCE_DTYPE", raising=False)
    assert Settings(_env_file=None).inference_dtype == "auto"
    monkeypatch.setenv("INFERENCE_DTYPE", "bfloat16")
    assert inference_dtype(Settings(_env_file=None).inference_dtype) == jnp.bfloat16
    monkeypatch.setenv("INFERENCE_DTYPE", "float16")
    with pytest.raises(ValueError, match="inference_dtype"):
        Settings(_env_file=None)
    # auto: float32 on the CPU and (until a GPU measurement says otherwise) on the GPU
    assert inference_dtype("auto") == jnp.float32  # this process's platform: the CPU
    assert inference_dtype("auto", "cpu") == jnp.float32
    assert inference_dtype("auto", "gpu") == jnp.float32
    assert inference_dtype("auto", "some-new-backend") == jnp.float32
    assert inference_dtype("bfloat16", "cpu") == jnp.bfloat16
    assert inference_dtype("float32", "gpu") == jnp.float32
    with pytest.raises(ValueError, match="unknown inference dtype"):
        inference_dtype("float16", "gpu")
