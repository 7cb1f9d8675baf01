"""The voice models are the pinned files: Whisper base is joined from its two wheels into the
data folder and checked; a changed file stops the service."""

from __future__ import annotations

import pytest

from functions.voice_engine import models


def test_base_is_joined_once_and_checked(tmp_path):
    folder = models.whisper_dir("base", tmp_path)
    assert folder == tmp_path / "whisper-base"
    assert (folder / "model.bin").stat().st_size == 145_217_532
    assert not list(tmp_path.glob("*.partial-*"))
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert models.whisper_dir("base", tmp_path) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == mtime  # not joined again


def test_a_damaged_join_is_redone(tmp_path):
    folder = models.whisper_dir("base", tmp_path)
    with (folder / "model.bin").open("r+b") as f:
        f.truncate(1000)  # a crash or a full disk mid-copy
    models.whisper_dir("base", tmp_path)
    assert (folder / "model.bin").stat().st_size == 145_217_532


def test_a_file_that_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    files = {**models.WHISPER_FILES["tiny.en"], "config.json": "0" * 64}
    monkeypatch.setitem(models.WHISPER_FILES, "tiny.en", files)
    with pytest.raises(models.ModelError, match="SHA-256"):
        models.whisper_dir("tiny.en", tmp_path)


def test_voices_are_checked():
    for voice in models.VOICES.values():
        assert models.voice_model(voice).suffix == ".onnx"
    with pytest.raises(models.ModelError, match="not installed"):
        models.package_dir("no_such_model_wheel")
