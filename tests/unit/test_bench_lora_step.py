"""`bench/lora_step.py` on its tiny preset: every multi-LoRA implementation is timed against
the base, and the JSON line carries each figure."""

from __future__ import annotations

import json

from bench.lora_step import main
from shared.neural.lora import LORA_IMPLS


def test_tiny_preset_times_every_implementation(capsys) -> None:
    assert main(["--tiny", "--rows", "2", "--steps", "2", "--calls", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert (result["model"], result["rows"], result["steps"]) == ("tiny", 2, 2)
    figures = result["figures"]
    assert figures["base_ms"] > 0
    for impl in LORA_IMPLS:
        assert figures[impl]["ms"] > 0
        assert abs(figures[impl]["ratio"] - figures[impl]["ms"] / figures["base_ms"]) < 1e-9
        assert any(line.startswith(impl) and "x base" in line for line in lines)
