"""`shared.neural.programs`: executables compiled ahead of time per argument signature, kept
on disk, loaded by a later process without tracing, and never confused with another
program's."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared.neural import programs
from shared.neural.programs import Programs, prune_other_versions, source_digest
from shared.platform.settings import REPO_ROOT


@functools.partial(jax.jit, donate_argnums=(1,), static_argnames=("steps",))
def _accumulate(weights, cache, x, *, steps):
    def body(_, c):
        return c + jnp.tanh(x @ weights).sum(axis=-1)

    return (x @ weights).sum(), jax.lax.fori_loop(0, steps, body, cache)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A compilation cache of the test's own (the programs' files go beside it)."""
    previous = jax.config.values["jax_compilation_cache_dir"]
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    monkeypatch.setattr(programs, "_pruned", set())
    yield tmp_path
    jax.config.update("jax_compilation_cache_dir", previous)


def _args(rows: int = 4):
    weights = jnp.ones((8, 8), jnp.float32)
    return weights, jnp.zeros((rows,), jnp.float32), np.full((rows, 8), 0.5, np.float32)


def _fresh(identity: str = "model-a") -> Programs:
    """What a new process would hold: no executable in memory."""
    return Programs(_accumulate, "accumulate", identity=identity, fixed=(0, 1))


def test_a_later_process_loads_what_the_first_compiled_and_gets_the_same_answer(
    cache_dir,
) -> None:
    first = _fresh()
    expected = first(*_args(), steps=3)
    assert (first.compiled, first.loaded) == (1, 0)
    files = list((cache_dir / "executables" / source_digest()).glob("accumulate-*.bin"))
    assert len(files) == 1
    first(*_args(), steps=3)  # held in memory: nothing compiled again
    assert first.compiled == 1

    later = _fresh()
    got = later(*_args(), steps=3)
    assert (later.compiled, later.loaded) == (0, 1)
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(expected[0]))
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(expected[1]))


def test_each_signature_static_value_and_identity_is_its_own_program(cache_dir) -> None:
    runner = _fresh()
    runner.prepare(*_args(4), steps=3)
    runner.prepare(*_args(8), steps=3)  # other shapes
    runner.prepare(*_args(4), steps=5)  # another static value
    assert runner.compiled == 3
    other_model = _fresh(identity="model-b")  # same shapes, another model's constants
    other_model.prepare(*_args(4), steps=3)
    assert (other_model.compiled, other_model.loaded) == (1, 0)
    assert len(list((cache_dir / "executables").rglob("*.bin"))) == 4


def test_prepare_runs_nothing_and_the_donated_cache_is_still_donated(cache_dir) -> None:
    runner = _fresh()
    weights, cache, x = _args()
    runner.prepare(weights, cache, x, steps=2)
    assert not cache.is_deleted()  # preparing did not run (or donate) anything
    runner(weights, cache, x, steps=2)
    assert cache.is_deleted()  # the call donated it, as the jitted function would


def test_a_damaged_file_is_compiled_again_and_rewritten(cache_dir, caplog) -> None:
    _fresh()(*_args(), steps=3)
    (path,) = (cache_dir / "executables").rglob("*.bin")
    path.write_bytes(b"not an executable")
    later = _fresh()
    with caplog.at_level(logging.WARNING, logger="neural.programs"):
        later(*_args(), steps=3)
    assert (later.compiled, later.loaded) == (1, 0)
    assert "did not load" in caplog.text
    assert _fresh().prepare(*_args(), steps=3) is not None and path.stat().st_size > 100


def test_without_a_compilation_cache_nothing_is_written(tmp_path) -> None:
    previous = jax.config.values["jax_compilation_cache_dir"]
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        runner = _fresh()
        runner(*_args(), steps=3)
        assert runner.compiled == 1
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)


def test_other_code_versions_go_once_stale(tmp_path) -> None:
    versions = tmp_path / "executables"
    for name in ("current", "recent", "old"):
        (versions / name).mkdir(parents=True)
        (versions / name / "x.bin").write_bytes(b"x")
    now = time.time()
    for name in ("current", "old"):
        os.utime(versions / name, (now - 3 * 86400, now - 3 * 86400))
    assert prune_other_versions(versions, keep="current", now=now) == 1
    assert sorted(p.name for p in versions.iterdir()) == ["current", "recent"]
    assert prune_other_versions(tmp_path / "absent", keep="current") == 0


SCRIPT = """
import sys
from pathlib import Path
import jax, jax.numpy as jnp, numpy as np
from shared.neural.compile_cache import configure
from shared.neural.programs import Programs
configure(Path(sys.argv[1]))
program = Programs(jax.jit(lambda x: jnp.tanh(x) * 2.0), "tanh", identity="t")
program(np.ones(5, np.float32))
print(program.compiled, program.loaded)
"""


def test_a_program_jax_loaded_from_its_own_cache_is_not_written(tmp_path) -> None:
    """XLA:CPU re-serializes a deserialized executable without some of its kernels (it loads,
    then fails with "Function ... not found"), so only what a process compiled itself is kept;
    a program JAX loaded from its persistent cache stays on that path. Processes of their own:
    JAX looks its persistent cache up once per process and program."""

    def start() -> tuple[int, int]:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
            text=True, timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        compiled, loaded = done.stdout.split()
        return int(compiled), int(loaded)

    assert start() == (1, 0)  # compiled: JAX's entry and our file written
    (ours,) = tmp_path.rglob("executables/*/*.bin")
    assert start() == (0, 1)  # loaded from our file
    ours.unlink()  # as after a change of the model package's code
    assert start() == (1, 0)  # JAX's cache hit...
    assert list(tmp_path.rglob("executables/*/*.bin")) == []  # ...is not written


def test_keep_false_reads_and_writes_no_files(cache_dir) -> None:
    runner = Programs(_accumulate, "accumulate", identity="m", fixed=(0, 1), keep=False)
    runner(*_args(), steps=3)
    assert runner.compiled == 1 and not (cache_dir / "executables").exists()


def test_a_failed_start_discards_this_versions_executables(cache_dir) -> None:
    _fresh()(*_args(), steps=3)
    (written,) = (cache_dir / "executables" / source_digest()).glob("*.bin")
    assert programs.discard_executables() == [written]
    assert not (cache_dir / "executables" / source_digest()).exists()
    assert programs.discard_executables() == []


def test_the_code_version_covers_the_traced_modules_and_not_the_host_loop() -> None:
    names = {path.name for path in programs.traced_sources()}
    assert {"runner.py", "model.py", "lora.py", "lora_rows.py", "device_sampling.py"} <= names
    assert "engine.py" not in names and "minilm.py" not in names
