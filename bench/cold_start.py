"""`make bench-cold`: each zip function's cold start, as the code's share of it: a fresh
interpreter per run (`--child`) imports the function's module and builds the app run.sh serves
(`shared.services:lambda_app` with FUNCTION_MODULE set: settings, the template, the route
table; it connects to nothing). Seconds are counted inside the child from its first line, and
from outside from the spawn (interpreter start included). The Lambda runtime's own start and
the Web Adapter's come on top; the figures compare functions and packagings.

Two sources of code:
- the checkout and its venv (default): bytecode as the venv has it;
- `--build-dir DIR`: what `sam build` produced (each function's artifact and the layer, and
  nothing else on sys.path: `python -S`), with bytecode writes off, as on Lambda's read-only
  code. `sam build` writes DIR (tests/integration/test_sam_build.py shows the command).

Per function: the median and p90 of RUNS runs and the ratio to the fastest function's median.
The last line is a JSON object with every figure (also $OUT/cold_start.json when OUT is set).

    python -m bench.cold_start                    # 5 runs per function
    python -m bench.cold_start --runs 9 --only HealthFunction ChatFunction
    python -m bench.cold_start --build-dir .aws-sam/build
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.output import emit_json
from infra.aws.package import LAYER_ID, zip_functions

REPO_ROOT = Path(__file__).resolve().parents[1]


def child(module: str) -> None:
    """One cold start: import the module, build the app; print the seconds of each."""
    started = time.perf_counter()
    __import__(module)
    imported = time.perf_counter()
    from shared.services import lambda_app

    lambda_app()
    print(json.dumps({"import_s": imported - started, "app_s": time.perf_counter() - started}))


def one_run(module: str, build_dir: Path | None, logical_id: str) -> dict[str, float]:
    env = {**os.environ, "FUNCTION_MODULE": module, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "bench.cold_start", "--child", module]
    cwd = REPO_ROOT
    if build_dir is not None:
        # Only the artifact and the layer: -S keeps the venv's site-packages out.
        paths = [str(build_dir / logical_id), str(build_dir / LAYER_ID / "python")]
        code = (
            "import sys; sys.path[:0] = sys.argv[1:3]; sys.argv = sys.argv[3:]; "
            "from bench_child import child; child(sys.argv[0])"
        )
        command = [sys.executable, "-S", "-c", code, *paths, module]
        env = {"PATH": os.environ["PATH"], "FUNCTION_MODULE": module, "LOG_LEVEL": "WARNING"}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPATH"] = str(_child_shim())
        cwd = build_dir / logical_id
    spawned = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - spawned
    if result.returncode != 0:
        raise SystemExit(f"{module}: {result.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return {**figures, "process_s": wall}


@functools.cache
def _child_shim() -> Path:
    """`child` as a one-file module the artifact's interpreter imports (the bench package
    is not part of an artifact), in a temporary folder of this run."""
    shim = Path(tempfile.mkdtemp(prefix="acs-cold-start-"))
    (shim / "bench_child.py").write_text("import json, time\n" + inspect.getsource(child))
    return shim


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for key in ("import_s", "app_s", "process_s"):
        values = sorted(run[key] for run in runs)
        p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
        out[f"{key[:-2]}_p50_s"] = round(statistics.median(values), 3)
        out[f"{key[:-2]}_p90_s"] = round(p90, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="logical ids (default: every zip function)")
    parser.add_argument("--build-dir", type=Path, help="a `sam build` output to start from")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    functions = {
        logical_id: f"{resource['Metadata']['Package']}.main"
        for logical_id, resource in zip_functions().items()
        # a plain Handler (the migrations) is no app behind the Web Adapter
        if "Handler" not in (resource.get("Properties") or {})
        and (not args.only or logical_id in args.only)
    }
    results = {}
    for logical_id, module in functions.items():
        runs = [one_run(module, args.build_dir, logical_id) for _ in range(args.runs)]
        results[logical_id] = summarise(runs)
    fastest = min(figures["app_p50_s"] for figures in results.values())
    print(f"{'function':<24}{'import p50':>11}{'p90':>7}{'app p50':>9}{'p90':>7}"
          f"{'process p50':>13}{'x fastest':>10}")  # fmt: skip
    for logical_id, figures in sorted(results.items(), key=lambda item: item[1]["app_p50_s"]):
        figures["ratio_to_fastest"] = round(figures["app_p50_s"] / fastest, 2)
        print(f"{logical_id:<24}{figures['import_p50_s']:>11.3f}{figures['import_p90_s']:>7.3f}"
              f"{figures['app_p50_s']:>9.3f}{figures['app_p90_s']:>7.3f}"
              f"{figures['process_p50_s']:>13.3f}{figures['ratio_to_fastest']:>10.2f}")  # fmt: skip
    source = str(args.build_dir) if args.build_dir else "venv"
    emit_json({"source": source, "runs": args.runs, "functions": results}, "cold_start.json")
    if args.build_dir:
        shutil.rmtree(_child_shim(), ignore_errors=True)


if __name__ == "__main__":
    main()
