"""The inference service's start: not ready (503, with the phase it is in) until every engine
shape is compiled or loaded, and a compilation cache store that cannot be reached does not
stop it (the model, the tokenizer and the embedder are stand-ins: the order is under test)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache
from starlette.testclient import TestClient

from functions.inference import runtime as runtime_module
from functions.inference.app import create_app
from functions.inference.runtime import Runtime
from shared.neural.compile_cache import cache_key
from shared.platform.settings import Settings

TOKEN = "readiness-test-token"
WAIT_S = 60


class CompilingEngine:
    """Holds `compile_shapes` until `release` is set, and records the calls."""

    def __init__(self) -> None:
        self.compiling = threading.Event()
        self.release = threading.Event()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def compile_shapes(self, **kwargs: Any) -> int:
        self.calls.append(("compile_shapes", kwargs))
        self.compiling.set()
        assert self.release.wait(WAIT_S)
        return 12

    def start(self) -> None:
        self.calls.append(("start", {}))

    def programs(self) -> dict[str, int]:
        return {"compiled": 0, "loaded": self.loaded}

    loaded = 0  # executables loaded from files


@pytest.fixture(autouse=True)
def jax_cache_config() -> Iterator[None]:
    """`Runtime.load` points this process's JAX at a test directory: put it back after."""
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    saved = {name: jax.config.values[name] for name in names}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


def runtime_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: CompilingEngine, **env: str
) -> Runtime:
    env = {"JAX_CACHE_DIR": str(tmp_path / "jax-cache"), "INFERENCE_TOKEN": TOKEN, **env}
    for name, value in {**env, "INFERENCE_ADAPTER_SLOTS": "0"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    runtime = Runtime(settings)

    def load_engine() -> Any:
        runtime.engine = engine  # type: ignore[assignment]
        return engine

    monkeypatch.setattr(runtime, "_load_engine", load_engine)
    monkeypatch.setattr(runtime, "_warm_up", lambda: engine.calls.append(("warm_up", {})))
    monkeypatch.setattr(runtime_module, "Embedder", lambda: _CompilingEmbedder(engine.calls))
    return runtime


class _CompilingEmbedder:
    """The embedder's programs are compiled in the same phase as the engine's shapes."""

    def __init__(self, calls: list):
        self.calls = calls

    def compile_all(self) -> int:
        self.calls.append(("embedder.compile_all", {}))
        return 20


def test_not_ready_until_every_shape_is_compiled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine = CompilingEngine()
    runtime = runtime_with(monkeypatch, tmp_path, engine, JAX_CACHE_S3="off")
    client = TestClient(create_app(runtime))
    auth = {"authorization": f"Bearer {TOKEN}"}

    loading = threading.Thread(target=runtime.load)
    loading.start()
    try:
        assert engine.compiling.wait(WAIT_S)
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {"status": "loading", "phase": "compiling", "error": None}
        refused = client.get("/v1/models", headers=auth)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_ready"
    finally:
        engine.release.set()
        loading.join(WAIT_S)

    # Every shape: no length limit on prefill or decode; no adapter widths without slots.
    assert engine.calls == [
        ("compile_shapes", {"max_len": None, "max_decode_len": None, "adapter_widths": ()}),
        ("embedder.compile_all", {}),
        ("start", {}),
        ("warm_up", {}),
    ]
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ready" and body["shapes"] == 12 + 20 and body["start_s"] > 0
    assert client.get("/v1/models", headers=auth).status_code == 200
    # JAX writes to the directory of this device and jaxlib, and caches every program.
    assert jax.config.values["jax_compilation_cache_dir"] == str(
        tmp_path / "jax-cache" / cache_key()
    )
    assert jax.config.values["jax_persistent_cache_min_compile_time_secs"] == 0


def test_an_unreachable_cache_store_does_not_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = CompilingEngine()
    engine.release.set()
    # Nothing listens on the discard port: each call to the store fails at once.
    runtime = runtime_with(
        monkeypatch, tmp_path, engine, JAX_CACHE_S3="on", S3_ENDPOINT_URL="http://127.0.0.1:9"
    )
    with caplog.at_level(logging.INFO, logger="inference"):
        runtime.load()
        assert runtime.load_error is None and runtime.ready.is_set()
        assert [name for name, _ in engine.calls] == [
            "compile_shapes",
            "embedder.compile_all",
            "start",
            "warm_up",
        ]
        # It tried the store (the download before compiling), and went on without it; once
        # ready it tries the upload (in the background).
        assert "compilation cache: not downloaded from s3://" in caplog.text
        deadline = time.monotonic() + WAIT_S
        while "compilation cache: not uploaded to s3://" not in caplog.text:
            assert time.monotonic() < deadline, "no upload was tried"
            time.sleep(0.05)


def test_a_failed_start_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = CompilingEngine()
    runtime = runtime_with(monkeypatch, tmp_path, engine, JAX_CACHE_S3="off")

    def broken(**kwargs: Any) -> int:
        raise RuntimeError("out of device memory")

    monkeypatch.setattr(engine, "compile_shapes", broken)
    runtime.load()
    health = TestClient(create_app(runtime)).get("/healthz")
    assert health.status_code == 503
    assert health.json() == {
        "status": "failed",
        "phase": "compiling",
        "error": "RuntimeError: out of device memory",
    }


def test_a_start_that_fails_with_executables_loaded_deletes_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """So the next start compiles (or loads from JAX's cache) instead of failing the same way
    on a bad file."""
    engine = CompilingEngine()
    engine.loaded = 3
    runtime = runtime_with(monkeypatch, tmp_path, engine, JAX_CACHE_S3="off")
    discarded: list[bool] = []
    monkeypatch.setattr(
        "functions.inference.runtime.programs.discard_executables",
        lambda: discarded.append(True) or [],
    )

    def broken(**kwargs: Any) -> int:
        raise RuntimeError("NOT_FOUND: Function negate_power_fusion not found")

    monkeypatch.setattr(engine, "compile_shapes", broken)
    runtime.load()
    assert discarded == [True]
    assert runtime.load_error is not None and "negate_power_fusion" in runtime.load_error
