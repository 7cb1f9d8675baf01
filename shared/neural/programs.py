"""The engine's compiled programs, held ahead of time and kept on disk as executables.

`jax.jit` traces the Python function and lowers it to XLA before it can look a program up in
the persistent compilation cache, so a warm start still paid about half a second of tracing and
lowering per shape (26 s of a 59 s warm start for the CPU's 78 programs), then ran each program
once to fill jit's dispatch cache. `Programs` compiles each argument signature ahead of time
(`lower(...).compile()`), dispatches calls to that executable, and writes it serialized
(`jax.experimental.serialize_executable`) beside the compilation cache, where a later start, or
another replica after the cache's sync through the object store, loads it without tracing,
lowering or running anything.

An executable's file is named by everything the program depends on: the source of the modules
its code is traced from (a code change is a new program even where the shapes are not), the
JAX version, the `identity` its owner gives (the model's config and the cache's length, which
shapes do not all show), the arguments' structure, shapes and dtypes, and the static
arguments. The directory is the compilation cache's, itself one per platform, device and
jaxlib (`compile_cache`). Only what this process compiled is written, never a program JAX
loaded from its own cache (see `prepare`). A file that does not load (truncated, another
version's) is compiled again and rewritten. The files are trusted as the compilation cache's
are: both hold machine code this process runs, and come from this service's own directory or
bucket.

On this CPU (`python -m bench.start --warm-runs 2`, 52 shapes, 2026-11-28): warm starts 58.8 s
before, 19.5 and 20.1 s with the executables.

Imports only JAX, NumPy and the standard library (benchmarks run it without the stack).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import logging
import os
import pickle
import shutil
import time
from collections.abc import Callable, Hashable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import serialize_executable

from shared.neural.compile_cache import watching

log = logging.getLogger("neural.programs")

SUBDIRECTORY = "executables"
PACKAGE = "shared.neural."
# Another code version's executables are deleted once untouched this long: a rolling deploy
# runs two versions side by side for minutes, and nothing else reads them.
STALE_AFTER_S = 24 * 3600
_pruned: set[Path] = set()


@cache
def source_digest() -> str:
    """The code the programs are traced from and the JAX version: what a program's behaviour
    depends on besides its arguments. The code is every model-package module the runner
    imports, directly or through another (the model, LoRA, sampling on the device, ...), so a
    change to the engine's host loop or to the training code keeps the executables."""
    digest = hashlib.sha256(jax.__version__.encode())
    for path in traced_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def traced_sources(root: str = "shared.neural.runner") -> list[Path]:
    """`root`'s file and those of the `shared.neural` modules it imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        spec = importlib.util.find_spec(name)
        if name in seen or spec is None or spec.origin is None:
            continue
        seen[name] = path = Path(spec.origin)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                todo.append(node.module or "")
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith(PACKAGE)]
    return sorted(seen.values())


def _versions_dir() -> Path | None:
    """Where executables live, one subdirectory per code version: beside JAX's persistent
    cache (None without one)."""
    root = jax.config.values.get("jax_compilation_cache_dir")
    return Path(root) / SUBDIRECTORY if root else None


def discard_executables() -> list[Path]:
    """Deletes this code version's executables (a start that failed with them loaded: the
    next one compiles, or loads from JAX's cache, instead of failing the same way); the files
    that went."""
    versions = _versions_dir()
    directory = versions / source_digest() if versions else None
    if directory is None or not directory.is_dir():
        return []
    files = sorted(directory.glob("*.bin"))
    shutil.rmtree(directory, ignore_errors=True)
    return files


def prune_other_versions(versions: Path, *, keep: str, now: float | None = None) -> int:
    """Deletes other code versions' executables untouched for `STALE_AFTER_S`; how many
    directories went. Never fails a start."""
    now = time.time() if now is None else now
    gone = 0
    for directory in versions.glob("*") if versions.is_dir() else ():
        try:
            if directory.name != keep and now - directory.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(directory)
                gone += 1
        except OSError as exc:
            log.warning("old executables %s not deleted: %s", directory, exc)
    return gone


def _signature(leaves: Sequence[Any]) -> tuple[Hashable, ...]:
    return tuple((np.shape(x), str(getattr(x, "dtype", type(x).__name__))) for x in leaves)


class Programs:
    """Calls of `jitted` (a `jax.jit` function) through executables compiled ahead of time, one
    per signature of the arguments. `fixed`: positions of arguments whose structure and shapes
    never change between calls (the model's state, the KV cache), left out of each call's
    lookup to keep it cheap; they are part of every executable's name all the same."""

    def __init__(
        self, jitted: Any, name: str, *, identity: str, fixed: Sequence[int] = (),
        keep: bool = True,
    ) -> None:  # fmt: skip
        self._jitted, self.name, self._identity = jitted, name, identity
        self.keep = keep  # False: compiled ahead of time, but no files read or written
        self._fixed = frozenset(fixed)
        self._programs: dict[Hashable, Callable[..., Any]] = {}
        self._fixed_name: str | None = None
        self.compiled = 0  # programs compiled in this process
        self.loaded = 0  # programs loaded from their files

    def __call__(self, *args: Any, **static: Any) -> Any:
        program = self._programs.get(self._key(args, static))
        if program is None:
            program = self.prepare(*args, **static)
        return program(*args)

    def prepare(self, *args: Any, **static: Any) -> Callable[..., Any]:
        """The executable for these arguments: held, loaded from its file, or compiled (and
        its file written). Nothing runs."""
        key = self._key(args, static)
        program = self._programs.get(key)
        if program is not None:
            return program
        path = self._path(key, args) if self.keep else None
        program = self._load(path) if path is not None else None
        if program is None:
            with watching() as stats:
                compiled = self._jitted.lower(*args, **static).compile()
            self.compiled += 1
            # Only a program compiled here is written: one JAX loaded from its persistent
            # cache is itself deserialized, and XLA:CPU serializes such an executable without
            # some of its kernels (it loads, then fails with "Function ... not found"). It
            # stays on the persistent cache's path until a fresh compile writes it.
            if path is not None and not stats.hits:
                self._write(path, compiled)
            program = compiled
        self._programs[key] = program
        return program

    def _key(self, args: Sequence[Any], static: dict[str, Any]) -> Hashable:
        varying = tuple(a for i, a in enumerate(args) if i not in self._fixed)
        leaves, treedef = jax.tree_util.tree_flatten(varying)
        return treedef, _signature(leaves), tuple(sorted(static.items()))

    def _path(self, key: Hashable, args: Sequence[Any]) -> Path | None:
        versions = _versions_dir()
        if versions is None:
            return None
        if self._fixed_name is None:  # the fixed arguments' part, worked out once
            fixed = tuple(a for i, a in enumerate(args) if i in self._fixed)
            leaves, treedef = jax.tree_util.tree_flatten(fixed)
            self._fixed_name = repr((treedef, _signature(leaves)))
        text = repr((self._identity, self._fixed_name, key))
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        if versions not in _pruned:
            _pruned.add(versions)
            prune_other_versions(versions, keep=source_digest())
        return versions / source_digest() / f"{self.name}-{digest}.bin"

    def _load(self, path: Path) -> Callable[..., Any] | None:
        try:
            payload, in_tree, out_tree = pickle.loads(path.read_bytes())  # noqa: S301 - see the module docstring
            program = serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged or foreign file: compile again, rewrite it
            log.warning("executable %s did not load (%s: %s); compiling it again",
                        path.name, type(exc).__name__, exc)  # fmt: skip
            return None
        self.loaded += 1
        return program

    def _write(self, path: Path, compiled: Any) -> None:
        try:
            data = pickle.dumps(serialize_executable.serialize(compiled))
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole, then renamed: a reader never sees half a file.
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(data)
            partial.replace(path)
        except Exception as exc:  # a full disk, a read-only cache: serve on without the file
            log.warning("executable %s not written (%s: %s)", path.name, type(exc).__name__, exc)
