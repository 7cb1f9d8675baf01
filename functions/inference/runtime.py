"""What the service holds in memory: the engine over SmolLM2, the tokenizer, the MiniLM
embedder, and the readiness flag (set after weights load and a warm-up generation)."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import jax
from prometheus_client import CollectorRegistry

from functions.inference.adapter_cache import AdapterCache, AdapterRef, Lease
from functions.inference.adapter_files import fetch_version
from functions.inference.compile_cache import StoredCompileCache
from shared.domain.adapters import registry as adapter_registry
from shared.domain.adapters.registry import AdapterRecord
from shared.neural import compile_cache, peft, programs
from shared.neural.config import LlamaConfig
from shared.neural.convert import ensure_weights
from shared.neural.engine import (
    DoneEvent,
    Engine,
    Event,
    default_adapter_widths,
    default_prefill_rows,
)
from shared.neural.minilm import Embedder
from shared.neural.model import build_model, inference_dtype
from shared.neural.sampling import SamplingParams
from shared.neural.tokenizer import ChatTokenizer
from shared.neural.weights import TOKENIZER_FILE, load_checkpoint
from shared.platform.aws import s3_client
from shared.platform.db.pool import PoolHolder
from shared.platform.errors import ValidationError
from shared.platform.settings import Settings
from shared.platform.template import load_template

log = logging.getLogger("inference")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine | None = None
    tokenizer: ChatTokenizer | None = None
    embedder: Embedder | None = None
    adapters: AdapterCache | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    ready: threading.Event = field(default_factory=threading.Event)
    embed_lock: threading.Lock = field(default_factory=threading.Lock)
    load_error: str | None = None
    # What the start is doing (reported by /healthz until ready), how many engine shapes it
    # compiled or loaded from the compilation cache, and how long it took to be ready.
    phase: str = "starting"
    shapes: int | None = None
    start_s: float | None = None
    _db: PoolHolder | None = field(default=None, init=False)
    # Callers reuse a request id (a chat turn's retries and fallbacks all carry the turn's id),
    # so each submission gets an engine id of its own: a disconnect cancels only its own
    # submission, while `cancel(request_id)` (the API) stops every live one with that id.
    _live: dict[str, set[str]] = field(default_factory=dict, init=False)

    def load(self) -> None:
        """Blocking: run in a thread at start-up; the service answers 503 until it is done:
        until every shape the engine and the embedder can run is compiled (or loaded from the
        persistent compilation cache) and a warm-up generation and embedding have run."""
        store: StoredCompileCache | None = None
        try:
            started = time.monotonic()
            store = self._compile_cache()
            # The stored entries download while the weights load: both come before compiling.
            pulling = _in_background(store.pull, "compile-cache-download") if store else None
            self.phase = "loading weights"
            engine = self._load_engine()
            if pulling is not None:
                self.phase = "downloading the compilation cache"
                pulling.join()
            self.phase = "compiling"
            compiling = time.monotonic()
            widths = engine.adapter_widths if self.adapters else ()
            # Every shape (None: no length limit), so no request waits for a compilation; the
            # embedder's too (its batches are padded to a few row and length buckets).
            engine_shapes = engine.compile_shapes(
                max_len=None, max_decode_len=None, adapter_widths=widths
            )
            embedder = Embedder()
            embedder_shapes = embedder.compile_all()
            self.shapes = engine_shapes + embedder_shapes
            log.info(
                "compiled or loaded %d engine and %d embedder shapes in %.1fs",
                engine_shapes,
                embedder_shapes,
                time.monotonic() - compiling,
            )
            engine.start()
            self.phase = "warming up"
            self.embedder = embedder
            self._warm_up()
            entries = store.entries() if store else []  # now, while nothing compiles
            self.start_s = time.monotonic() - started
            self.phase = "ready"
            self.ready.set()
            log.info("inference ready in %.1fs", self.start_s)
            if store:
                _in_background(functools.partial(store.push, entries), "compile-cache-upload")
        except Exception as exc:  # reported by /healthz; the process stays up to say why
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("inference failed to load")
            if self.engine is not None and self.engine.programs()["loaded"]:
                # The next start must not fail the same way on a bad executable file: it
                # compiles (or loads from JAX's own cache) instead, here and in every replica.
                gone = programs.discard_executables()
                log.warning("deleted %d engine executables after the failed start", len(gone))
                if store is not None:
                    store.forget(gone)

    def _load_engine(self) -> Engine:
        """The tokenizer, the engine over the weights, and the adapter cache when it has
        adapter slots."""
        directory = ensure_weights(self.settings.weights_dir)
        checkpoint = load_checkpoint(directory)
        self.tokenizer = ChatTokenizer.from_file(directory / TOKENIZER_FILE)
        self.engine = Engine(
            build_model(
                checkpoint.config,
                checkpoint.tensors,
                dtype=inference_dtype(self.settings.inference_dtype),
            ),
            decode_text=self.tokenizer.decode,
            stop_token_ids=[self.tokenizer.im_end_id],
            slots=self.settings.inference_slots,
            max_seq_len=self.settings.inference_max_seq_len,
            queue_size=self.settings.inference_queue_size,
            adapter_slots=self.settings.inference_adapter_slots,
            adapter_rank=self.settings.inference_adapter_max_rank,
            horizon=self.settings.inference_decode_horizon,
            prefill_rows=self.settings.inference_prefill_rows or default_prefill_rows(),
            prefill_budget=self.settings.inference_prefill_budget,
            lora_impl=self.settings.inference_lora_impl,
            adapter_widths=default_adapter_widths(),
            keep_executables=self.settings.inference_executables,
        )
        if self.settings.inference_adapter_slots:
            self.adapters = self._adapter_cache(self.engine, checkpoint.config)
        return self.engine

    def _compile_cache(self) -> StoredCompileCache | None:
        """Points JAX at this device's cache directory; with JAX_CACHE_S3, the same entries
        in the data bucket (None when off, or when the store cannot even be named)."""
        directory = compile_cache.configure(self.settings.jax_cache_dir)
        device = jax.devices()[0]
        log.info(
            "inference on %s (%s); compilation cache in %s", device, device.device_kind, directory
        )
        if not self.settings.jax_cache_in_store:
            return None
        try:
            template = load_template(self.settings.template_path, self.settings)
            bucket = template.buckets["DataBucket"].name
            return StoredCompileCache(s3_client(self.settings), bucket, directory)
        except Exception:  # the store only saves time: start without it
            log.exception("compilation cache: the object store is not available")
            return None

    def _adapter_cache(self, engine: Engine, config: LlamaConfig) -> AdapterCache:
        """Adapters resolve through Postgres (artifact rows) and load from the S3 store."""
        settings = self.settings
        db = self._db = PoolHolder(settings)
        s3 = s3_client(settings)
        bucket = load_template(settings.template_path, settings).buckets["DataBucket"].name

        async def resolve(adapter_id: str, version: int | None, user: str | None) -> AdapterRecord:
            pool = await db.get()
            async with pool.connection() as conn:
                return await adapter_registry.resolve(conn, adapter_id, version, user_id=user)

        async def fetch(record: AdapterRecord) -> dict[str, bytes]:
            return await asyncio.to_thread(fetch_version, s3, bucket, record.prefix)

        return AdapterCache(
            resolve=resolve,
            fetch=fetch,
            parse=lambda files: engine.prepare_adapter(
                peft.parse(files, config, max_rank=settings.inference_adapter_max_rank)
            ),
            install=engine.install_adapter,
            slots=settings.inference_adapter_slots,
            host_budget_bytes=settings.inference_adapter_cache_mb * 1024 * 1024,
            pin_ttl_s=settings.inference_adapter_pin_ttl_s,
            registry=self.registry,
        )

    async def acquire_adapters(self, refs: Sequence[AdapterRef], user: str | None) -> Lease | None:
        if not refs:
            return None
        if self.adapters is None:
            raise ValidationError("this inference service runs without adapter slots")
        return await self.adapters.acquire(refs, user_id=user)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()

    def _warm_up(self) -> None:
        """One real generation through the running engine and one embedding: the service is
        ready only when both paths have worked end to end."""
        assert self.engine and self.tokenizer and self.embedder
        done = threading.Event()
        self.engine.submit(
            [self.tokenizer.im_start_id] * 8,
            SamplingParams(temperature=0.0, max_tokens=2),
            lambda event: done.set() if isinstance(event, DoneEvent) else None,
        )
        if not done.wait(600):
            raise RuntimeError("warm-up generation did not finish")
        self.embedder.embed(["warm up"])

    async def generate(
        self,
        prompt: Sequence[int],
        params: SamplingParams,
        request_id: str,
        lease: Lease | None = None,
    ) -> AsyncIterator[Event]:
        """Engine events for one request, delivered on this event loop; cancels the request
        if the consumer goes away (client disconnect) before it finishes, and releases its
        adapters when it is over, however it ends."""
        assert self.engine is not None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def deliver(event: Event) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        finished = False
        engine_id = f"{request_id}/{uuid.uuid4().hex[:12]}"
        self._live.setdefault(request_id, set()).add(engine_id)
        try:
            self.engine.submit(
                prompt,
                params,
                deliver,
                request_id=engine_id,
                adapters=lease.engine_adapters if lease else (),
            )
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, DoneEvent):
                    finished = True
                    return
        finally:
            if not finished:
                self.engine.cancel(engine_id)
            live = self._live.get(request_id, set())
            live.discard(engine_id)
            if not live:
                self._live.pop(request_id, None)
            if lease is not None:
                lease.release()

    def cancel(self, request_id: str) -> bool:
        """Stops every live submission made under `request_id`; False when there is none."""
        assert self.engine is not None
        engine_ids = list(self._live.get(request_id, ()))
        return any([self.engine.cancel(engine_id) for engine_id in engine_ids])

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        embedder = self.embedder
        assert embedder is not None

        def run() -> tuple[list[list[float]], int]:
            with self.embed_lock:
                return embedder.embed(texts).tolist(), sum(embedder.token_counts(texts))

        return await asyncio.to_thread(run)


def _in_background(work: Callable[[], object], name: str) -> threading.Thread:
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread
