"""/healthz's disk check: the data directory's disk reported down before the local stack's
servers start refusing writes (SeaweedFS below 1 % free), and only where that directory is on
this host."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from shared.platform import health
from shared.platform.health import disk_free_problem
from shared.platform.settings import Settings

GIB = 2**30


def _usage(monkeypatch, *, total: int, free: int) -> None:
    usage = shutil._ntuple_diskusage(total, total - free, free)  # type: ignore[attr-defined]
    monkeypatch.setattr(health.shutil, "disk_usage", lambda path: usage)


def test_a_disk_with_room_is_fine(monkeypatch, tmp_path) -> None:
    _usage(monkeypatch, total=100 * GIB, free=30 * GIB)
    assert disk_free_problem(tmp_path, 2.0) is None


def test_a_nearly_full_disk_says_how_full_and_why_it_matters(monkeypatch, tmp_path) -> None:
    _usage(monkeypatch, total=200 * GIB, free=3 * GIB)
    problem = disk_free_problem(tmp_path, 2.0)
    assert problem is not None
    assert "3.0 GiB (1.5 %) free" in problem and "DISK_MIN_FREE_PERCENT=2" in problem


async def test_the_check_is_down_when_the_disk_is_nearly_full(monkeypatch, tmp_path) -> None:
    _usage(monkeypatch, total=100 * GIB, free=GIB // 2)
    clients = SimpleNamespace(settings=Settings(data_dir=tmp_path, disk_min_free_percent=2.0))
    name, result = await health._timed("disk", health._disk, clients)  # type: ignore[arg-type]
    assert (name, result.status) == ("disk", "down")
    assert result.error is not None and result.error.startswith("DiskLow: 0.5 GiB (0.5 %)")


@pytest.mark.parametrize("exists", [True, False])
def test_the_disk_is_checked_only_where_the_data_directory_is_here(tmp_path, exists) -> None:
    data_dir = tmp_path if exists else tmp_path / "absent"
    clients = SimpleNamespace(settings=Settings(data_dir=data_dir))
    assert ("disk" in health._checks(clients)) is exists  # type: ignore[arg-type]
