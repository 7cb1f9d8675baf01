"""Trains a real LoRA version with our training core and writes what PEFT should reproduce.

Run by hand in the project's own venv (check_trained_peft.py then checks it in the reference
venv of make_reference.py, see docs/model.md, "Training"):

    PYTHONPATH=. .venv/bin/python tests/reference/train_version_reference.py OUTDIR

- Trains on a format habit (corrections "Answer: Paris." of the base's full sentences) at the
  product's gate 0.5, CPU-cheap: 3 samples of ≤ 64 tokens, 6 steps, a fixed seed.
- Writes the version's files exactly as the train function publishes them (`version_files`:
  PEFT's adapter_config.json and adapter_model.safetensors, and training_config.json).
- Writes `our_logits.npz`: for each prompt, its token ids and the last position's logits, with
  the version applied at the trained gate the way the inference engine applies it (installed
  in a rank-16 bank slot, gathered with its gate, the engine's jitted step) and without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from shared.neural.convert import ensure_weights
from shared.neural.lora import LoraBank, LoraWeights, gather, install, pack
from shared.neural.model import KVCache, Llama, build_model
from shared.neural.runner import step_fn
from shared.neural.tokenizer import ChatMessage, ChatTokenizer
from shared.neural.training import (
    PREFERRED,
    FrozenBase,
    TrainingConfig,
    TrainingSample,
    train,
    version_files,
)
from shared.neural.weights import TOKENIZER_FILE, load_checkpoint
from shared.platform.settings import get_settings

# (question, the base's answer, the user's correction): a habit the base does not have.
CORRECTIONS = [
    ("What is the capital of France?", "The capital of France is Paris.", "Answer: Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", "Answer: Tokyo."),
    ("What is the capital of Italy?", "The capital of Italy is Rome.", "Answer: Rome."),
]
# A trained question, a held-out one of the same kind, and an unrelated one.
PROMPTS = [
    "What is the capital of France?",
    "What is the capital of Peru?",
    "Write a haiku about autumn leaves.",
]
CONFIG = TrainingConfig(
    rank=8, alpha=16, gate=0.5, batch_size=3, max_tokens=64, epochs=6, max_steps=6, seed=7
)
BANK_RANK = 16  # the engine's default adapter rank: the version is zero padded to it
WIDTH = 64  # the padded prompt length of the step


def served_logits(
    model: Llama, weights: LoraWeights, prompts: list[list[int]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each prompt's logits after its last token from the engine's jitted step: the base's
    (no LoRA batch), and with `weights` in bank slot 1 gathered at the config's gate, as the
    engine serves a request routed to the version."""
    config = model.config
    bank = LoraBank.zeros(config, slots=2, rank=BANK_RANK)
    bank = install(bank, np.int32(1), pack(weights, config, rank=BANK_RANK))
    adapter = gather(bank, np.array([[1]], np.int32), np.array([[CONFIG.gate]], np.float32))
    state, step = step_fn(model)
    out = []
    for ids in prompts:
        tokens = np.zeros((1, WIDTH), np.int32)
        tokens[0, : len(ids)] = ids
        rows = []
        for lora in (None, adapter):
            logits, _, _ = step(
                state,
                tokens,
                np.arange(WIDTH, dtype=np.int32)[None],
                KVCache.zeros(config, batch=1, length=WIDTH),
                None,
                np.array([len(ids) - 1], np.int32),
                lora,
                attend_len=WIDTH,
            )
            rows.append(np.asarray(logits, np.float32)[0])
        out.append((rows[0], rows[1]))
    return out


def main(out: Path) -> None:
    directory = ensure_weights(get_settings().weights_dir)
    checkpoint = load_checkpoint(directory)
    tokenizer = ChatTokenizer.from_file(directory / TOKENIZER_FILE)
    model = build_model(checkpoint.config, checkpoint.tensors)
    base = FrozenBase.from_model(model)  # the same arrays as `model`, not a copy
    samples = [
        TrainingSample(target=c, kind=PREFERRED, messages=(("user", q),), alternative=a)
        for q, a, c in CORRECTIONS
    ]
    result = train(base, samples, CONFIG, tokenizer=tokenizer)
    print(f"trained: {result.steps} steps, losses {[round(x, 3) for x in result.losses]}")

    out.mkdir(parents=True, exist_ok=True)
    files, checksum = version_files(result.weights, result.config)
    for name, data in files.items():
        (out / name).write_bytes(data)
    print(f"wrote {sorted(files)} to {out} ({checksum})")

    arrays = {"gate": np.array(CONFIG.gate, np.float32), "prompts": np.array(PROMPTS)}
    prompts = [tokenizer.encode_chat([ChatMessage("user", q)]) for q in PROMPTS]
    assert max(map(len, prompts)) <= WIDTH
    rows = served_logits(model, result.weights, prompts)
    for i, (question, ids, (base_row, adapted_row)) in enumerate(
        zip(PROMPTS, prompts, rows, strict=True)
    ):
        arrays[f"ids_{i}"] = np.array(ids, np.int32)
        arrays[f"base_{i}"], arrays[f"adapted_{i}"] = base_row, adapted_row
        print(
            f"{question!r}: argmax base {tokenizer.decode([int(base_row.argmax())])!r},"
            f" adapted {tokenizer.decode([int(adapted_row.argmax())])!r},"
            f" max |adapted - base| {np.abs(adapted_row - base_row).max():.3f}"
        )
    np.savez_compressed(out / "our_logits.npz", **arrays)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: train_version_reference.py OUTDIR")
    main(Path(sys.argv[1]))
