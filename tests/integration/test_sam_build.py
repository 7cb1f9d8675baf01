"""`sam build` of the zip functions and the dependencies layer, as CI runs it (no Docker: the
image functions are left out of the template it builds), with the packaging facts asserted on
what it produced: each function carries its own package and shared/, nothing else of the
repository; the layer has no JAX and no clustering stack; every function plus its layers
stays under Lambda's 250 MB unzipped; every function's module imports from its artifact and
the layer alone. The time and sizes are printed and written to sam_build.json in the test's
temporary folder (docs/packaging.md quotes them).

The SAM CLI's pins conflict with the main lock: it runs from its own venv (.venv/sam-cli,
from requirements-sam.lock, hashed), made here on first use. It reaches PyPI for the layer's
wheels (pip's cache makes later runs fast)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from infra.aws.package import LAYER_ID, function_packages, zip_functions
from shared.platform.settings import REPO_ROOT
from shared.platform.template import load_raw

SAM_LOCK = REPO_ROOT / "requirements-sam.lock"
SAM_VENV = REPO_ROOT / ".venv" / "sam-cli"
LAMBDA_LIMIT_BYTES = 250 * 1024 * 1024  # function + layers, unzipped
# The AWS Lambda Web Adapter layer (a public ARN, not built here): its extension is ~5 MB;
# counted generously.
ADAPTER_LAYER_BYTES = 10 * 1024 * 1024
NOT_IN_A_FUNCTION = (".data", ".venv", "tests", "frontend", "bench", "infra", "shared/neural")
WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".npz", ".onnx", ".bin", ".pt", ".msgpack")
NOT_IN_THE_LAYER = ("jax", "jaxlib", "flax", "optax", "sklearn", "scipy", "moto", "pytest")


def sam_cli() -> Path:
    """The `sam` of .venv/sam-cli, (re)installed when requirements-sam.lock changed."""
    stamp, digest = SAM_VENV / ".lock-sha256", hashlib.sha256(SAM_LOCK.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text() != digest:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(SAM_VENV)], check=True)
        subprocess.run(
            [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--require-hashes", "--no-deps", "-r", str(SAM_LOCK)],
            check=True,
        )  # fmt: skip
        stamp.write_text(digest)
        print(f"sam-cli venv installed in {time.monotonic() - started:.1f} s")
    return SAM_VENV / "bin" / "sam"


def zip_only_template(path: Path) -> None:
    """template.yaml as SAM builds it without Docker: the images lose their Dockerfile (SAM then
    takes them as already built, from ImageUri), and the nested stacks are left opaque."""
    raw = load_raw(REPO_ROOT / "template.yaml")
    for logical_id, resource in raw["Resources"].items():
        metadata, props = resource.get("Metadata") or {}, resource.get("Properties") or {}
        for key in ("Dockerfile", "DockerContext", "DockerTag", "DockerBuildArgs"):
            metadata.pop(key, None)
        if resource["Type"] == "AWS::Serverless::Application":
            props["Location"] = f"https://example-bucket.s3.amazonaws.com/{logical_id}.template"
    path.write_text(json.dumps(raw))


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def zipped_bytes(root: Path, out: Path) -> int:
    """What `sam package` would upload (deflated zip)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root))
    return out.stat().st_size


def import_seconds(function_dir: Path, layer_dir: Path, module: str) -> float:
    """Imports the function's module in a fresh interpreter that sees only its artifact and the
    layer (-S: no site-packages of the venv)."""
    code = (
        "import sys, time; sys.path[:0] = sys.argv[1:3]; t = time.perf_counter(); "
        f"import {module}; print(time.perf_counter() - t)"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(function_dir), str(layer_dir / "python")],
        capture_output=True,
        text=True,
        cwd=function_dir,
        env={"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1"},  # read-only, as in Lambda
    )
    assert result.returncode == 0, f"{module}: {result.stderr[-2000:]}"
    return float(result.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(1800)
def test_sam_build_packs_each_function_alone_with_one_layer(tmp_path: Path) -> None:
    sam = sam_cli()
    template, build = tmp_path / "template.json", tmp_path / "build"
    zip_only_template(template)
    env = {**os.environ, "PATH": f"{sam.parent}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    started = time.monotonic()
    result = subprocess.run(
        [str(sam), "build", "--template-file", str(template), "--base-dir", str(REPO_ROOT),
         "--build-dir", str(build), "--build-in-source"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    build_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    functions = zip_functions()
    layer = build / LAYER_ID
    layer_bytes = tree_bytes(layer)
    figures: dict[str, object] = {
        "sam_build_seconds": round(build_seconds, 1),
        "layer": {"unzipped_mb": round(layer_bytes / 2**20, 1),
                  "zipped_mb": round(zipped_bytes(layer, tmp_path / "layer.zip") / 2**20, 1)},
        "functions": {},
    }  # fmt: skip

    installed = {path.name.lower() for path in (layer / "python").iterdir()}
    assert not installed & set(NOT_IN_THE_LAYER), installed & set(NOT_IN_THE_LAYER)
    assert {"pydantic", "psycopg", "boto3", "numpy", "uvicorn"} <= installed

    for logical_id, resource in functions.items():
        artifact, package = build / logical_id, str(resource["Metadata"]["Package"])
        package_dir = package.replace(".", "/")
        assert (artifact / package_dir / "main.py").is_file(), logical_id
        assert (artifact / "shared" / "platform" / "settings.py").is_file(), logical_id
        assert (artifact / "run.sh").stat().st_mode & 0o111, f"{logical_id}: run.sh not executable"
        assert (artifact / "template.yaml").is_file(), logical_id
        for relative in NOT_IN_A_FUNCTION:
            assert not (artifact / relative).exists(), f"{logical_id} contains {relative}"
        packed = {f"functions/{p.name}" for p in (artifact / "functions").iterdir() if p.is_dir()}
        assert packed - {"functions/__pycache__"} == set(function_packages(package)), logical_id
        weights = [p for p in artifact.rglob("*") if p.suffix in WEIGHT_SUFFIXES]
        assert not weights, f"{logical_id} contains weights: {weights[:3]}"
        function_bytes = tree_bytes(artifact)
        total = function_bytes + layer_bytes + ADAPTER_LAYER_BYTES
        assert total < LAMBDA_LIMIT_BYTES, f"{logical_id}: {total / 2**20:.0f} MB unzipped"
        figures["functions"][logical_id] = {  # type: ignore[index]
            "unzipped_mb": round(function_bytes / 2**20, 2),
            "zipped_mb": round(zipped_bytes(artifact, tmp_path / f"{logical_id}.zip") / 2**20, 2),
            "with_layers_mb": round(total / 2**20, 1),
            "import_s": round(import_seconds(artifact, layer, f"{package}.main"), 3),
        }

    (tmp_path / "sam_build.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
