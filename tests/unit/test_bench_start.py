"""`bench/start.py` end to end on its tiny preset, in processes where the stack's modules cannot
be imported (the GPU machine it is for has JAX but none of them): the cold start compiles every
program into the cache directory, the warm one loads them all and compiles none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.unit.test_bench_engine_random import FORBIDDEN, ROOT

# Every process of the run (the parent and each start) blocks them before anything imports:
# a None entry in sys.modules makes `import name` (and its submodules) raise ImportError.
SITECUSTOMIZE = """
import os, sys
for name in os.environ["BLOCKED_MODULES"].split(","):
    sys.modules[name] = None
"""


def test_tiny_preset_reports_a_cold_and_a_warm_start(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["--tiny", "--slots", "2", "--max-seq-len", "64", "--adapter-slots", "2"]
    args += ["--warm-runs", "1", "--cache-dir", str(cache)]
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {
        **os.environ,
        "OUT": str(tmp_path),
        "PYTHONPATH": f"{site}{os.pathsep}{ROOT}",
        "JAX_PLATFORMS": "cpu",
        "BLOCKED_MODULES": ",".join(FORBIDDEN),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.start", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert json.loads((tmp_path / "start.json").read_text()) == result
    assert result["model"] == "tiny" and result["weights"] == "random"
    cold, (warm,) = result["cold"], result["warm"]
    # Prefill bucket 64, decode at batch widths 1 and 2 over length bucket 64: three shapes,
    # again with three adapters a row (the CPU compiles no one-adapter width).
    assert cold["shapes"] == warm["shapes"] == 6
    assert cold["platform"] == "cpu" and cold["dtype"] == "float32"
    assert cold["finish"] == warm["finish"] == "length"  # the warm-up generation ran
    for report in (cold, warm):
        modules = report["project_modules"]
        assert "shared.neural.engine" in modules
        assert all(n == "shared" or n.startswith("shared.neural") for n in modules)
    # Cold: everything compiled and written; warm: nothing compiled. The engine's six
    # programs come back as executables (not traced, not lowered, not looked up in JAX's
    # cache); the other programs (the adapter bank's set-up, the warm-up's) from JAX's cache.
    assert cold["cache_misses"] > 0 and cold["cache_hits"] == 0
    assert cold["executables"] == {"compiled": 6, "loaded": 0}
    assert warm["executables"] == {"compiled": 0, "loaded": 6}
    assert warm["cache_misses"] == 0
    assert warm["cache_hits"] == cold["cache_misses"] - cold["executables"]["compiled"]
    entries = list((cache / cold["cache_key"]).glob("*-cache"))
    assert len(entries) == cold["cache_misses"]
    executables = list((cache / cold["cache_key"] / "executables").glob("*/*.bin"))
    assert len(executables) == 6
    for report in (cold, warm):
        assert report["memory_maps"] > 0
        for key in ("ready_s", "import_s", "model_s", "compile_s", "warm_up_s"):
            assert isinstance(report[key], float) and report[key] > 0, (key, report[key])
        assert report["ready_s"] > report["compile_s"]
    assert any(line.startswith("cold start, ready after") for line in lines)
    assert any(line.startswith("warm start, ready after") for line in lines)
