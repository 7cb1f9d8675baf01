"""`make lint` is part of the test command: ruff and mypy must stay clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.config import REPO_ROOT

BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True)


def test_ruff() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = _run(str(BIN / "mypy"), "shared", "functions", "infra")
    assert result.returncode == 0, result.stdout + result.stderr
