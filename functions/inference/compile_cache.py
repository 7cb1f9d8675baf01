"""The compilation cache in the object store, so every replica starts warm.

A container's disk starts empty, so in AWS the persistent compilation cache
(`shared.neural.compile_cache`) lives in the data bucket under `jax-cache/<cache key>/`: a
starting service downloads that prefix into its local cache directory before it compiles, and
once ready uploads the entries the store does not have yet (the first replica of a device and
jaxlib writes them all; later ones, only what they compiled anew). The engine's serialized
executables (`shared.neural.programs`, in the directory's `executables/`) travel the same
way. Locally the data directory is the persistent place already, so this is off unless asked
for (`JAX_CACHE_S3`).

The store is an optimisation, never a dependency: a bucket that cannot be reached, listed or
written is logged and the service compiles as if the cache were empty. The entries are
executable code that the service loads, so only the stack's own roles may write the prefix
(the data bucket is private to the stack).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger("inference")

PREFIX = "jax-cache"
# Entries are a few MB each and a start needs ~100: parallel transfers keep the download to
# seconds on a container's network.
TRANSFER_WORKERS = 8


class StoredCompileCache:
    """One local cache directory (already keyed by device and jaxlib) mirrored under
    `s3://bucket/jax-cache/<directory name>/`. Neither method raises: each returns how many
    files it moved, and logs why it moved fewer."""

    def __init__(self, s3: Any, bucket: str, directory: Path, *, prefix: str | None = None):
        self.s3, self.bucket, self.directory = s3, bucket, directory
        self.prefix = prefix or f"{PREFIX}/{directory.name}/"

    def pull(self) -> int:
        """Downloads the stored entries that are not in the directory yet."""
        try:
            wanted = [
                key for key in self._stored() if not (self.directory / self._relative(key)).exists()
            ]
            moved = self._each(wanted, self._download)
        except Exception as exc:  # any failure of the store means "compile locally"
            log.warning("compilation cache: not downloaded from s3://%s/%s (%s)", *self._at(exc))
            return 0
        log.info("compilation cache: %d entries from s3://%s/%s", moved, self.bucket, self.prefix)
        return moved

    def entries(self) -> list[Path]:
        """The directory's entries now. JAX writes an entry in place (not atomically) while
        it compiles, so take this when nothing compiles and push it later."""
        return list(_entries(self.directory))

    def push(self, entries: Sequence[Path]) -> int:
        """Uploads those of `entries` (from `entries()`) that the store does not have yet."""
        try:
            stored = set(self._stored())
            wanted = [path for path in entries if self._key(path) not in stored]
            moved = self._each(wanted, self._upload)
        except Exception as exc:  # a replica that cannot share its entries still serves
            log.warning("compilation cache: not uploaded to s3://%s/%s (%s)", *self._at(exc))
            return 0
        log.info("compilation cache: %d new entries to s3://%s/%s", moved, self.bucket, self.prefix)
        return moved

    def forget(self, paths: Sequence[Path]) -> int:
        """Deletes the stored copies of these local files (executables a failed start deleted
        here, so the next start does not download them again)."""
        try:
            keys = set(self._stored()) & {self._key(path) for path in paths}
            moved = self._each(sorted(keys), self._delete)
        except Exception as exc:
            log.warning("compilation cache: not deleted from s3://%s/%s (%s)", *self._at(exc))
            return 0
        log.info("compilation cache: %d entries deleted from s3://%s/%s",
                 moved, self.bucket, self.prefix)  # fmt: skip
        return moved

    def _delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def _stored(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def _download(self, key: str) -> None:
        target = self.directory / self._relative(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        # Whole or not at all: JAX may read the entry the moment its name appears.
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        partial.write_bytes(body)
        partial.replace(target)

    def _upload(self, path: Path) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self._key(path), Body=path.read_bytes())

    def _key(self, path: Path) -> str:
        return self.prefix + path.relative_to(self.directory).as_posix()

    def _relative(self, key: str) -> str:
        relative = key.removeprefix(self.prefix)
        if not relative or ".." in relative.split("/"):
            raise ValueError(f"unexpected key {key!r} in the compilation cache's prefix")
        return relative

    def _each(self, items: list[Any], move: Callable[[Any], None]) -> int:
        if not items:
            return 0
        with ThreadPoolExecutor(min(TRANSFER_WORKERS, len(items))) as pool:
            return sum(1 for _ in pool.map(move, items))  # re-raises the first failure

    def _at(self, exc: Exception) -> tuple[str, str, str]:
        return self.bucket, self.prefix, f"{type(exc).__name__}: {exc}"


def _entries(directory: Path) -> Iterator[Path]:
    """The cache's files, also in subdirectories (XLA's GPU autotuning results go there), less
    what is not an entry: lock files, access-time stamps, half-written downloads."""
    for path in sorted(directory.rglob("*")):
        name = path.name
        if not path.is_file() or name.startswith(".") or name.endswith(("-atime", ".lock")):
            continue
        yield path
