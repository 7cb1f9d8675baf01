"""The compilation cache in the object store (the local S3 server): a first replica uploads its
entries, a second, starting empty, downloads them and then compiles nothing, and neither
moves what the other side already has."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from jax.experimental.compilation_cache import compilation_cache

from functions.inference.compile_cache import PREFIX, StoredCompileCache
from shared.neural.compile_cache import cache_key, configure, watching
from shared.platform.aws import s3_client
from shared.platform.template import load_template


@pytest.fixture
def store(local_stack, settings):
    """The data bucket and a prefix of this test's own (emptied after)."""
    s3 = s3_client(settings)
    bucket = load_template(settings.template_path, settings).buckets["DataBucket"].name
    prefix = f"{PREFIX}/test-{uuid.uuid4().hex[:8]}/"
    yield s3, bucket, prefix
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.fixture
def restore_jax_cache():
    saved = jax.config.values["jax_compilation_cache_dir"]
    yield
    jax.config.update("jax_compilation_cache_dir", saved)
    compilation_cache.reset_cache()


def test_a_second_replica_downloads_what_the_first_uploaded(store, tmp_path: Path) -> None:
    s3, bucket, prefix = store
    first = tmp_path / "first"
    (first / "autotune").mkdir(parents=True)
    (first / "jit_step-abc-cache").write_bytes(b"program one")
    (first / "autotune" / "fusion-1.textproto").write_bytes(b"tuned")
    (first / "jit_step-abc-atime").write_bytes(b"\0" * 8)  # not an entry: stays here
    (first / ".half-written.part").write_bytes(b"?")

    uploader = StoredCompileCache(s3, bucket, first, prefix=prefix)
    assert uploader.push(uploader.entries()) == 2
    assert uploader.push(uploader.entries()) == 0  # the store has them: nothing moves

    second = tmp_path / "second"
    second.mkdir()
    (second / "jit_local-cache").write_bytes(b"compiled here")
    downloader = StoredCompileCache(s3, bucket, second, prefix=prefix)
    assert downloader.pull() == 2
    assert (second / "jit_step-abc-cache").read_bytes() == b"program one"
    assert (second / "autotune" / "fusion-1.textproto").read_bytes() == b"tuned"
    assert not (second / "jit_step-abc-atime").exists()
    assert downloader.pull() == 0  # already here
    assert not [p for p in second.rglob("*") if p.name.endswith(".part")]
    # What the second compiled anew goes up; the first's entries do not go up again.
    assert downloader.push(downloader.entries()) == 1


def test_a_replica_on_an_empty_disk_loads_instead_of_compiling(
    store, tmp_path: Path, restore_jax_cache
) -> None:
    """The real thing on this CPU. A replica has the same cache path as the first (JAX's key
    covers XLA's autotuning-cache path, so the path is part of the configuration) and an
    empty disk: what it downloads, JAX loads."""
    s3, bucket, prefix = store
    directory = configure(tmp_path / "jax-cache")
    assert directory.name == cache_key()
    program = jax.jit(lambda x: jnp.tanh(x) * 3.0 + 1.0)
    with watching() as stats:
        program(jnp.arange(7.0)).block_until_ready()
    assert stats.misses >= 1 and stats.hits == 0
    first = StoredCompileCache(s3, bucket, directory, prefix=prefix)
    uploaded = first.push(first.entries())
    assert uploaded == stats.misses  # every program was written, however quick

    shutil.rmtree(directory)  # the next container's disk
    directory.mkdir()
    jax.clear_caches()  # and nothing compiled in memory
    compilation_cache.reset_cache()
    assert StoredCompileCache(s3, bucket, directory, prefix=prefix).pull() == uploaded
    with watching() as stats:
        program(jnp.arange(7.0)).block_until_ready()
    assert stats.hits == uploaded and stats.misses == 0


def test_forget_deletes_the_stored_copies_of_files_deleted_here(store, tmp_path: Path) -> None:
    """A start that failed with executables loaded deletes them here and in the bucket, so no
    replica downloads them again."""
    s3, bucket, prefix = store
    directory = tmp_path / "cache"
    bad = directory / "executables" / "v1" / "decode-abc.bin"
    kept = directory / "jit_step-abc-cache"
    for path in (bad, kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    cache = StoredCompileCache(s3, bucket, directory, prefix=prefix)
    assert cache.push(cache.entries()) == 2
    assert cache.forget([bad, directory / "never-stored.bin"]) == 1
    assert cache._stored() == [prefix + "jit_step-abc-cache"]
