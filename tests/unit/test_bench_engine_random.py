"""`bench/engine_random.py` end to end on its tiny preset, in a subprocess where the stack's
modules cannot be imported: the GPU machine it is for has JAX but none of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What the GPU machine lacks (the stack's libraries and packages), and the model package's
# modules that read weights or tokenizer files.
FORBIDDEN = (
    "shared.platform",
    "shared.domain",
    "shared.services",
    "shared.neural.weights",
    "shared.neural.convert",
    "shared.neural.tokenizer",
    "shared.neural.minilm",
    "shared.neural.peft",
    "functions",
    "boto3",
    "botocore",
    "psycopg",
    "psycopg_pool",
    "httpx",
    "pydantic_settings",
    "tokenizers",
    "safetensors",
    # Absent here; blocked so the baseline's skip path runs wherever the test does.
    "torch",
    "transformers",
)

# A None entry in sys.modules makes `import name` (and its submodules) raise ImportError.
RUNNER = """
import runpy, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = ["bench.engine_random", *sys.argv[2:]]
try:
    runpy.run_module("bench.engine_random", run_name="__main__")
except SystemExit as done:
    if done.code:
        raise
shared = sorted(n for n in sys.modules if n.split(".")[0] == "shared" and sys.modules[n])
print("SHARED " + ",".join(shared))
"""


def test_tiny_preset_runs_with_the_stack_blocked_and_reports_every_figure(
    tmp_path: Path,
) -> None:
    args = ["--tiny", "--streams", "1,4", "--lora-streams", "4", "--prompt-tokens", "16"]
    args += ["--new-tokens", "8", "--ttft-runs", "3"]
    env = {**os.environ, "OUT": str(tmp_path), "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, ",".join(FORBIDDEN), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()

    # Only the model package's own modules were imported from the project.
    assert lines[-1].startswith("SHARED ")
    imported = set(lines[-1].removeprefix("SHARED ").split(","))
    assert imported and all(n == "shared" or n.startswith("shared.neural") for n in imported)

    result = json.loads(lines[-2])
    assert json.loads((tmp_path / "engine_random.json").read_text()) == result
    assert result["model"] == "tiny" and result["weights"] == "random"
    assert result["dtype"] == "float32" and result["platform"] == "cpu"
    assert result["streams"] == [1, 4] and result["slots"] == 4
    assert result["baseline"] == {"skipped": "torch and transformers not installed"}
    figures = result["figures"]
    assert set(figures) == {
        "compile_s",
        "compile_shapes",
        "compile_lora_s",
        "compile_lora_shapes",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "decode_b1_tok_s",
        "aggregate_1_tok_s",
        "aggregate_4_tok_s",
        "lora_base_tok_s",
        "lora_tok_s",
        "lora_ratio",
        "lora_rounds",
    }
    assert figures["lora_rounds"] == 3  # base and adapters measured in alternation
    for key, value in figures.items():
        assert isinstance(value, int | float) and value > 0, (key, value)
    # One prefill shape and decode at batch widths 1, 2, 4 over the one length bucket (88: the
    # context, shorter than the smallest bucket of 128), then the same again with one adapter.
    assert (figures["compile_shapes"], figures["compile_lora_shapes"]) == (4, 8)
    # Every figure has its aligned line before the JSON.
    assert any(line.startswith("decode, batch 1") for line in lines)
    assert any("4 distinct rank-8 adapters" in line for line in lines)
