"""Continuous batching over a fixed pool of decode slots. Knows nothing of HTTP.

One engine thread owns the model. Between decode steps it admits waiting requests into free
slots (each prefilled on its own, padded to a length bucket, straight into its slot of the
shared KV cache) and retires finished ones, so requests join and leave a running batch. A
decode step runs the live requests only, padded to a batch bucket (a power of two) and
attending to a length bucket that covers the longest of them, so each shape compiles once.
Greedy requests take the device's argmax; others sample on the host, with a generator per
request (a seed gives the same text whatever else is running).

Callers `submit` a prompt (token ids) with `SamplingParams` and an `on_event` callback, which the
engine thread calls with `TokenEvent`s and one final `DoneEvent`. The admission queue is
bounded (`EngineBusy` when full); `cancel` frees a slot at once and returns the partial text.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from shared.neural.generate import PREFILL_BUCKETS
from shared.neural.lora import (
    MAX_ADAPTERS_PER_REQUEST,
    LoraBank,
    LoraBatch,
    LoraWeights,
    PackedLora,
    gather,
    install,
    pack,
)
from shared.neural.model import KVCache, Llama
from shared.neural.sampling import SamplingParams, sample

FinishReason = Literal["stop", "length", "cancelled", "timeout", "error"]


class EngineBusy(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"admission queue full; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class TokenEvent:
    request_id: str
    text: str  # the new text since the previous event (may be empty while a stop string is held)
    token_id: int
    at: float


@dataclass(frozen=True)
class DoneEvent:
    request_id: str
    text: str  # the whole completion
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    truncated: bool
    at: float


Event = TokenEvent | DoneEvent


@dataclass
class _Request:
    request_id: str
    prompt: list[int]
    params: SamplingParams
    on_event: Callable[[Event], None]
    rng: np.random.Generator
    generated: list[int] = field(default_factory=list)
    emitted: str = ""
    deadline: float | None = None
    adapters: tuple[tuple[int, float], ...] = ()  # (bank slot, gate)


def _runner(model: Llama) -> tuple[Any, Any]:
    """Jitted prefill-into-slot and decode-over-slots; the cache argument is donated, so both
    update it in place. Both return the logits and their argmax: greedy rows need only the
    [B] token ids on the host, not [B, vocabulary] floats."""
    graphdef, state = nnx.split(model)

    @functools.partial(jax.jit, donate_argnums=(3,), static_argnames=("attend_len",))
    def step(
        state: Any,
        tokens: jax.Array,
        positions: jax.Array,
        cache: KVCache,
        rows: jax.Array | None,
        last: jax.Array,
        lora: LoraBatch | None,
        *,
        attend_len: int,
    ) -> tuple[jax.Array, jax.Array, KVCache]:
        model = nnx.merge(graphdef, state)
        logits, cache = model(tokens, positions, cache, attend_len, rows=rows, last=last, lora=lora)
        return logits, jnp.argmax(logits, axis=-1).astype(jnp.int32), cache

    return state, step


class Engine:
    def __init__(
        self,
        model: Llama,
        *,
        decode_text: Callable[[Sequence[int]], str],
        stop_token_ids: Sequence[int],
        slots: int = 4,
        max_seq_len: int = 1024,
        queue_size: int = 32,
        prefill_buckets: Sequence[int] = PREFILL_BUCKETS,
        adapter_slots: int = 0,
        adapter_rank: int = 16,
    ):
        self.config = model.config
        self.slots = slots
        self.max_seq_len = max_seq_len
        self.queue_size = queue_size
        self.buckets = tuple(b for b in prefill_buckets if b <= max_seq_len)
        # Decode attends to a power-of-two prefix of the cache that covers the longest live
        # sequence: one compiled variant per length bucket.
        self.length_buckets = tuple(sorted({min(1 << k, max_seq_len) for k in range(6, 16)}))
        # Decode runs the live requests only, padded to a power of two (one compiled variant
        # per batch bucket): one stream on a large pool decodes as fast as on a pool of one.
        self.batch_buckets = tuple(sorted({min(1 << k, slots) for k in range(0, 16)}))
        self.decode_widths: collections.Counter[int] = collections.Counter()  # steps per width
        self._decode_text = decode_text
        self._stop_ids = frozenset(stop_token_ids)
        self._state, self._step = _runner(model)
        self._cache = KVCache.zeros(self.config, batch=slots, length=max_seq_len)
        # Bank slot 0 stays zero (the no-adapter entry); slots 1..adapter_slots hold adapters.
        self.adapter_slots = adapter_slots
        self._bank = (
            LoraBank.zeros(self.config, slots=adapter_slots + 1, rank=adapter_rank)
            if adapter_slots
            else None
        )
        self._installs: list[tuple[int, dict[str, np.ndarray], threading.Event]] = []
        # The last gathered rows' adapters, reused while the batch's membership is unchanged.
        self._gathered: tuple[tuple[Any, ...], LoraBatch] | None = None
        self._active: list[_Request | None] = [None] * slots
        self._waiting: collections.deque[_Request] = collections.deque()
        self._cancelled: set[str] = set()
        self._lock = threading.Condition()
        self._accepting = True
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.step_seconds = 0.05  # running estimate, for Retry-After

    # --- public API -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def compile_shapes(
        self, *, max_len: int = 512, max_decode_len: int = 256, adapter_widths: Sequence[int] = ()
    ) -> int:
        """Runs each prefill bucket up to `max_len` and each decode batch width at each length
        bucket up to `max_decode_len` once, on padding rows whose cache writes are dropped, so
        the compilations (or loads from the persistent cache) happen before traffic; longer
        shapes compile on first use. `adapter_widths` (from 1 and 3): the same shapes again
        with that many adapters per row. Call before `start`. Returns the number of shapes."""
        assert self._thread is None, "compile_shapes runs before the engine thread starts"
        shapes = [(1, width, width) for width in self.buckets if width <= max_len]
        shapes += [
            (batch, 1, length)
            for batch in self.batch_buckets
            for length in self.length_buckets
            if length <= max_decode_len
        ]
        widths = [0, *(w for w in adapter_widths if self._bank is not None)]
        for adapters in widths:
            for batch, width, attend_len in shapes:
                padding = np.full((batch, width), self.max_seq_len, np.int32)
                full = width == 1 and batch == self.slots  # as _run_decode / _run_prefill call it
                _, chosen, self._cache = self._step(
                    self._state,
                    np.zeros((batch, width), np.int32),
                    padding,
                    self._cache,
                    None if full else np.zeros(batch, np.int32),
                    np.zeros(batch, np.int32),
                    self._lora([()] * batch, adapters),
                    attend_len=attend_len,
                )
                chosen.block_until_ready()
        return len(shapes) * len(widths)

    def prepare_adapter(self, weights: LoraWeights) -> PackedLora:
        """The adapter in this engine's bank layout (done once, when it is loaded)."""
        if self._bank is None:
            raise ValueError("this engine has no adapter slots")
        return PackedLora(pack(weights, self.config, rank=self._bank.rank))

    def install_adapter(self, slot: int, adapter: LoraWeights | PackedLora) -> None:
        """Writes an adapter into bank slot `slot` (1..adapter_slots), between decode steps;
        returns once it is there. The caller (the adapter cache) guarantees that no queued or
        running request uses the slot meanwhile."""
        if self._bank is None or not 1 <= slot <= self.adapter_slots:
            raise ValueError(f"no adapter slot {slot} (this engine has {self.adapter_slots})")
        if isinstance(adapter, LoraWeights):
            adapter = self.prepare_adapter(adapter)
        packed = adapter.fields
        done = threading.Event()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._bank = install(self._bank, np.int32(slot), packed)
                return
            self._installs.append((slot, packed, done))
            self._lock.notify_all()
        done.wait()

    def stop(self, *, drain: bool = True, timeout_s: float = 60.0) -> None:
        """Stops admitting; with `drain`, running and queued requests finish first."""
        with self._lock:
            self._accepting = False
            if not drain:
                self._cancelled.update(r.request_id for r in self._requests())
            self._stopping = True
            self._lock.notify_all()
        if self._thread:
            self._thread.join(timeout_s)

    def submit(
        self,
        prompt: Sequence[int],
        params: SamplingParams,
        on_event: Callable[[Event], None],
        *,
        request_id: str | None = None,
        adapters: Sequence[tuple[int, float]] = (),
    ) -> str:
        """Queues a request; `adapters`: up to 3 (bank slot, gate) pairs, installed already."""
        if not prompt:
            raise ValueError("empty prompt")
        if len(adapters) > MAX_ADAPTERS_PER_REQUEST or any(
            not 1 <= slot <= self.adapter_slots for slot, _ in adapters
        ):
            raise ValueError(f"at most {MAX_ADAPTERS_PER_REQUEST} installed adapter slots")
        if len(prompt) > self.buckets[-1] or len(prompt) + params.max_tokens > self.max_seq_len:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) plus max_tokens ({params.max_tokens})"
                f" exceeds the context of {self.max_seq_len}"
            )
        now = time.monotonic()
        request = _Request(
            request_id=request_id or uuid.uuid4().hex,
            prompt=list(prompt),
            params=params,
            on_event=on_event,
            rng=np.random.default_rng(params.seed),
            deadline=now + params.max_decode_ms / 1000 if params.max_decode_ms else None,
            adapters=tuple((int(slot), float(gate)) for slot, gate in adapters),
        )
        with self._lock:
            if not self._accepting:
                raise EngineBusy(retry_after_s=5)
            if len(self._waiting) >= self.queue_size:
                raise EngineBusy(retry_after_s=self._retry_after())
            self._waiting.append(request)
            self._lock.notify_all()
        return request.request_id

    def cancel(self, request_id: str) -> bool:
        with self._lock:
            known = any(r.request_id == request_id for r in self._requests())
            if known:
                self._cancelled.add(request_id)
                self._lock.notify_all()
            return known

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def active_slots(self) -> int:
        return sum(r is not None for r in self._active)

    # --- the engine thread --------------------------------------------------------------------
    def _requests(self) -> list[_Request]:
        return [r for r in self._active if r is not None] + list(self._waiting)

    def _retry_after(self) -> int:
        return max(1, int(len(self._waiting) * 64 * self.step_seconds / max(self.slots, 1)))

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._apply_installs()
                self._apply_cancellations()
                while not self._waiting and not any(self._active) and not self._stopping:
                    self._lock.wait()
                    self._apply_installs()
                    self._apply_cancellations()
                if self._stopping and not self._waiting and not any(self._active):
                    return
                admitted = self._admit()
            for slot, request in admitted:
                self._run_prefill(slot, request)
            if any(self._active):
                self._run_decode()

    def _apply_installs(self) -> None:
        for slot, packed, done in self._installs:
            assert self._bank is not None
            self._bank = install(self._bank, np.int32(slot), packed)
            done.set()
        if self._installs:
            self._gathered = None
        self._installs.clear()

    def _lora(self, requests: Sequence[Any], width: int | None = None) -> LoraBatch | None:
        """Batch rows' adapters (a `_Request`, None or () each), gathered from the bank with
        J = 1 when no row has more than one adapter, else 3; None when no row has one (the
        base path). Decode steps with the same rows reuse the last gather."""
        sets = [r.adapters if isinstance(r, _Request) else () for r in requests]
        if width is None:
            most = max((len(a) for a in sets), default=0)
            width = 0 if most == 0 else 1 if most == 1 else MAX_ADAPTERS_PER_REQUEST
        if width == 0 or self._bank is None:
            return None
        key = (width, *sets)
        if self._gathered is not None and self._gathered[0] == key:
            return self._gathered[1]
        slots = np.zeros((len(sets), width), np.int32)
        gates = np.zeros((len(sets), width), np.float32)
        for row, chosen in enumerate(sets):
            for j, (slot, gate) in enumerate(chosen):
                slots[row, j], gates[row, j] = slot, gate
        rows = gather(self._bank, slots, gates)
        self._gathered = (key, rows)
        return rows

    def _apply_cancellations(self) -> None:
        for request in [r for r in self._waiting if r.request_id in self._cancelled]:
            self._waiting.remove(request)
            self._finish(None, request, "cancelled")
        for slot, running in enumerate(self._active):
            if running is not None and running.request_id in self._cancelled:
                self._finish(slot, running, "cancelled")
        self._cancelled.clear()

    def _admit(self) -> list[tuple[int, _Request]]:
        admitted = []
        for slot in range(self.slots):
            if self._active[slot] is None and self._waiting:
                request = self._waiting.popleft()
                self._active[slot] = request
                admitted.append((slot, request))
        return admitted

    def _run_prefill(self, slot: int, request: _Request) -> None:
        n = len(request.prompt)
        width = next(b for b in self.buckets if n <= b)
        tokens = np.zeros((1, width), np.int32)
        tokens[0, :n] = request.prompt
        positions = np.arange(width, dtype=np.int32)[None]
        logits, chosen, self._cache = self._step(
            self._state,
            tokens,
            positions,
            self._cache,
            np.array([slot], np.int32),
            np.array([n - 1], np.int32),
            self._lora([request]),
            attend_len=width,
        )
        self._accept_token(slot, request, self._choose(request, logits, chosen, 0))

    def _run_decode(self) -> None:
        live = [(slot, r) for slot, r in enumerate(self._active) if r is not None]
        width = next(b for b in self.batch_buckets if len(live) <= b)
        self.decode_widths[width] += 1
        # A full-width batch runs every slot in place (row i is slot i); a narrower one names
        # the slots it runs. Padding rows sit past the cache's end: their writes are dropped.
        layout = self._active if width == self.slots else [r for _, r in live]
        tokens = np.zeros((width, 1), np.int32)
        positions = np.full((width, 1), self.max_seq_len, np.int32)
        rows = np.zeros(width, np.int32)
        for i, request in enumerate(layout):
            if request is not None:
                tokens[i, 0] = request.generated[-1]
                positions[i, 0] = len(request.prompt) + len(request.generated) - 1
        for i, (slot, _) in enumerate(live):
            rows[i] = slot
        started = time.perf_counter()
        longest = int(max(p for p in positions[:, 0] if p < self.max_seq_len)) + 1
        attend_len = next(b for b in self.length_buckets if longest <= b)
        logits, chosen, self._cache = self._step(
            self._state,
            tokens,
            positions,
            self._cache,
            None if width == self.slots else rows,
            np.zeros(width, np.int32),
            self._lora(layout + [None] * (width - len(layout))),
            attend_len=attend_len,
        )
        picks = [
            (i, request, self._choose(request, logits, chosen, i))
            for i, request in enumerate(layout)
            if request is not None
        ]
        self.step_seconds = 0.9 * self.step_seconds + 0.1 * (time.perf_counter() - started)
        for i, request, token in picks:
            slot = i if width == self.slots else live[i][0]
            self._accept_token(slot, request, token)

    def _choose(self, request: _Request, logits: Any, chosen: Any, row: int) -> int:
        """The next token of a batch row: the device's argmax for greedy requests without a
        logit bias, else a sample on the host from that row's logits (fetched once per step,
        only if needed)."""
        if request.params.temperature == 0 and not request.params.logit_bias:
            return int(np.asarray(chosen)[row])
        return sample(np.asarray(logits)[row], request.params, request.rng)

    def _accept_token(self, slot: int, request: _Request, token: int) -> None:
        if token in self._stop_ids:
            self._finish(slot, request, "stop")
            return
        request.generated.append(token)
        text = self._decode_text(request.generated)
        for stop in request.params.stop:
            cut = text.find(stop)
            if cut != -1:
                self._finish(slot, request, "stop", text=text[:cut])
                return
        visible = _hold_back(text, request.params.stop)
        delta, request.emitted = visible[len(request.emitted) :], visible
        request.on_event(TokenEvent(request.request_id, delta, token, time.monotonic()))
        if len(request.generated) >= request.params.max_tokens:
            self._finish(slot, request, "length", text=text)
        elif request.deadline is not None and time.monotonic() >= request.deadline:
            self._finish(slot, request, "timeout", text=text)

    def _finish(
        self, slot: int | None, request: _Request, reason: FinishReason, *, text: str | None = None
    ) -> None:
        if slot is not None:
            self._active[slot] = None
        final = text if text is not None else self._decode_text(request.generated)
        request.on_event(
            DoneEvent(
                request_id=request.request_id,
                text=final,
                finish_reason=reason,
                prompt_tokens=len(request.prompt),
                completion_tokens=len(request.generated),
                truncated=reason in ("cancelled", "timeout"),
                at=time.monotonic(),
            )
        )


def _hold_back(text: str, stops: Sequence[str]) -> str:
    """Text safe to emit: without an incomplete UTF-8 sequence at the end, and without a
    suffix that could still become a stop string."""
    text = text.rstrip("\ufffd")
    keep = len(text)
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                keep = min(keep, len(text) - size)
                break
    return text[:keep]
