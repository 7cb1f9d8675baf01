"""`make lint` is part of the test command: ruff, mypy and the layer contract must hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.platform.settings import REPO_ROOT

BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True)


def test_ruff() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    """The code keeps ruff's formatting (`# fmt: skip` where a hand layout reads better), so a
    reformat never hides a change in a diff."""
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = _run(str(BIN / "mypy"), "shared", "functions", "infra")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layer_contract_holds() -> None:
    """pyproject.toml's import-linter contracts: platform below domain below functions,
    nothing in shared importing functions or infra, the model package apart."""
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
