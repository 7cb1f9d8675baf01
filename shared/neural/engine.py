"""Continuous batching over a fixed pool of decode slots. Knows nothing of HTTP.

One engine thread owns the model. Between device calls it admits waiting requests into free
slots, prefills them (several prompts of one length bucket per call, straight into their slots
of the shared KV cache, up to a token budget before the running streams take their next call)
and retires finished ones, so requests join and leave a running batch. A decode call runs the
live requests only, padded to a batch bucket and attending to a length bucket that covers the
longest of them, so each shape compiles once, and runs up to `horizon` steps on the device
(`runner.make_runner`): tokens are picked there (`device_sampling`), and the host streams what
each call produced. Cancellation, deadlines and stop strings take effect between calls, so
within one horizon. A call runs one step while admitted prompts still wait for their prefill
(so they start soon) or when a row's sampling needs the host (a logit bias, copy-aware
decoding), and stops at the first row's token budget while requests wait for a slot.

Callers `submit` a prompt (token ids) with `SamplingParams` and an `on_event` callback, which the
engine thread calls with `TokenEvent`s and one final `DoneEvent`. The admission queue is
bounded (`EngineBusy` when full); `cancel` frees a slot at once and returns the partial text.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from shared.neural.device_sampling import SamplingRows, request_key
from shared.neural.engine_events import (
    DoneEvent,
    EngineBusy,
    Event,
    FinishReason,
    Request,
    TokenEvent,
    hold_back,
)
from shared.neural.lora import (
    MAX_ADAPTERS_PER_REQUEST,
    Bank,
    LoraBatch,
    LoraImpl,
    LoraWeights,
    PackedLora,
    gather,
    install,
    new_bank,
    pack,
    relayout,
)
from shared.neural.model import KVCache, Llama
from shared.neural.runner import DecodeOut, make_runner
from shared.neural.sampling import SamplingParams, processor_for, sample

# Steps per decode call. One call per token cost a host round trip per token: 3.6 ms a step at
# batch 1 on an H200 against 1.0 ms with 64 steps in one call (issue 21).
DEFAULT_HORIZON = 16
# Prompt lengths compiled for prefill. No 32 bucket: a chat prompt (template and system prompt
# included) is longer, and each bucket is a program per adapter width to compile at start.
SERVING_PREFILL_BUCKETS = (64, 128, 256, 512, 1024, 2048)
# Prompt tokens prefilled between two decode calls while streams run (vLLM's default
# max_num_batched_tokens): the most a wave of new requests delays the running ones.
DEFAULT_PREFILL_BUDGET = 2048


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
        prefill_buckets: Sequence[int] = SERVING_PREFILL_BUCKETS,
        adapter_slots: int = 0,
        adapter_rank: int = 16,
        horizon: int = DEFAULT_HORIZON,
        prefill_rows: int = 1,
        prefill_budget: int = DEFAULT_PREFILL_BUDGET,
        lora_impl: LoraImpl = "gather",
        adapter_widths: Sequence[int] = (1, MAX_ADAPTERS_PER_REQUEST),
        keep_executables: bool = True,
    ):
        self.config = model.config
        self.slots = slots
        self.max_seq_len = max_seq_len
        self.queue_size = queue_size
        self.horizon = horizon
        self.prefill_budget = prefill_budget
        self.buckets = tuple(b for b in prefill_buckets if b <= max_seq_len)
        # Decode attends to a power-of-two prefix of the cache that covers the longest live
        # sequence: one compiled variant per length bucket, from 128 (a chat turn's context
        # is rarely shorter; a 64 bucket saved 4-10 % of a step on the CPU for contexts under
        # 64 tokens, not worth a sixth more programs at start).
        self.length_buckets = tuple(sorted({min(1 << k, max_seq_len) for k in range(7, 16)}))
        # Decode runs the live requests only, padded to a power of two (one compiled variant
        # per batch bucket): one stream on a large pool decodes as fast as on a pool of one.
        self.batch_buckets = _powers_of_two(slots)
        # Prefill runs up to `prefill_rows` prompts of one length bucket per call.
        self.prefill_batches = _powers_of_two(max(1, min(prefill_rows, slots)))
        self.decode_widths: collections.Counter[int] = collections.Counter()  # calls per width
        self.decode_steps: collections.Counter[int] = collections.Counter()  # calls per step count
        self.prefill_calls: collections.Counter[int] = collections.Counter()  # calls per batch
        self._decode_text = decode_text
        self._stop_ids = frozenset(stop_token_ids)
        self._stop_array = np.array(sorted(self._stop_ids) or [-1], np.int32)
        self._state, self._prefill, self._decode = make_runner(
            model, max_seq_len=max_seq_len, keep_executables=keep_executables
        )
        self._cache = KVCache.zeros(
            self.config, batch=slots, length=max_seq_len, dtype=getattr(model, "dtype", jnp.float32)
        )
        # Bank slot 0 stays zero (the no-adapter entry); slots 1..adapter_slots hold adapters.
        self.adapter_slots = adapter_slots
        # Adapters per row that decode programs are compiled for (each width is a copy of every
        # program); the widest must hold a request's most.
        self.adapter_widths = tuple(sorted({*adapter_widths, MAX_ADAPTERS_PER_REQUEST}))
        self._bank: Bank | None = (
            new_bank(self.config, slots=adapter_slots + 1, rank=adapter_rank, impl=lora_impl)
            if adapter_slots
            else None
        )
        self._installs: list[tuple[int, dict[str, np.ndarray], threading.Event]] = []
        # The last gathered rows' adapters, reused while the batch's membership is unchanged.
        self._gathered: tuple[tuple[Any, ...], LoraBatch] | None = None
        self._active: list[Request | None] = [None] * slots
        self._pending: list[tuple[int, Request]] = []  # admitted, not yet prefilled
        self._waiting: collections.deque[Request] = collections.deque()
        self._cancelled: set[str] = set()
        self._lock = threading.Condition()
        self._accepting = True
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.step_seconds = 0.05  # running estimate of one decode step, for Retry-After

    # --- public API -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def shapes(
        self, *, max_len: int | None = None, max_decode_len: int | None = None
    ) -> list[tuple[str, int, int]]:
        """The (kind, rows, length) programs the engine runs for prompts up to `max_len` and
        sequences up to `max_decode_len` tokens (None: every one it can run)."""
        widths = [w for w in self.buckets if max_len is None or w <= max_len]
        lengths = [n for n in self.length_buckets if max_decode_len is None or n <= max_decode_len]
        return [("prefill", rows, width) for width in widths for rows in self.prefill_batches] + [
            ("decode", batch, length) for batch in self.batch_buckets for length in lengths
        ]

    def compile_shapes(
        self,
        *,
        max_len: int | None = None,
        max_decode_len: int | None = None,
        adapter_widths: Sequence[int] = (),
    ) -> int:
        """Compiles each program of `shapes` ahead of time, or loads its executable written by
        an earlier start (`programs.Programs`), so nothing is traced or compiled once traffic
        comes; `adapter_widths` (from 1 and 3): the same programs again with that many adapters
        per row. Nothing runs. Call before `start`. Returns the number of programs."""
        assert self._thread is None, "compile_shapes runs before the engine thread starts"
        shapes = self.shapes(max_len=max_len, max_decode_len=max_decode_len)
        widths = [0, *(w for w in adapter_widths if self._bank is not None)]
        for adapters in widths:
            for kind, rows, length in shapes:
                lora = self._lora([()] * rows, adapters)
                sampling = SamplingRows.build([None] * rows, [None] * rows)
                if kind == "prefill":
                    padding = np.full((rows, length), self.max_seq_len, np.int32)
                    self._prefill.prepare(
                        self._state, np.zeros((rows, length), np.int32), padding, self._cache,
                        np.zeros(rows, np.int32), np.zeros(rows, np.int32), lora, sampling,
                        attend_len=length,
                    )  # fmt: skip
                    continue
                self._decode.prepare(*self._decode_args(
                    np.zeros(rows, np.int32), np.full(rows, self.max_seq_len, np.int32),
                    None if rows == self.slots else np.zeros(rows, np.int32), lora, sampling,
                    np.ones(rows, np.int32), np.ones(rows, np.int32), 1,
                ), attend_len=length, horizon=self.horizon)  # fmt: skip
        return len(shapes) * len(widths)

    def programs(self) -> dict[str, int]:
        """Programs this process compiled, and loaded from executables an earlier start wrote."""
        parts = (self._prefill, self._decode)
        return {"compiled": sum(p.compiled for p in parts),
                "loaded": sum(p.loaded for p in parts)}  # fmt: skip

    def set_lora_impl(self, impl: LoraImpl) -> None:
        """Moves the installed adapters into `impl`'s bank layout (benchmarks compare the
        implementations on one engine). Call while the engine is idle."""
        with self._lock:
            if self._bank is not None:
                self._bank = relayout(self._bank, self.config, impl)
            self._gathered = None

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
        request = Request(
            request_id=request_id or uuid.uuid4().hex,
            prompt=list(prompt),
            params=params,
            on_event=on_event,
            rng=np.random.default_rng(params.seed),
            key=request_key(params.seed),
            processor=processor_for(params),
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
    def _requests(self) -> list[Request]:
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
                self._pending += self._admit()
            # Prefill up to the token budget, then one decode call for the running streams:
            # a wave of new prompts delays running streams by one budget's prefill at most.
            spent = 0
            while self._pending and spent < self.prefill_budget:
                spent += self._run_prefill(self._next_prefill_batch(self.prefill_budget - spent))
            if any(r is not None and r.generated for r in self._active):
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
        """Batch rows' adapters (a `Request`, None or () each), gathered from the bank with
        J = the narrowest of `adapter_widths` that holds every row's adapters; None when no
        row has one (the base path). Decode calls with the same rows reuse the last gather."""
        sets = [r.adapters if isinstance(r, Request) else () for r in requests]
        if width is None:
            most = max((len(a) for a in sets), default=0)
            width = 0 if most == 0 else next(w for w in self.adapter_widths if most <= w)
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

    def _admit(self) -> list[tuple[int, Request]]:
        admitted = []
        for slot in range(self.slots):
            if self._active[slot] is None and self._waiting:
                request = self._waiting.popleft()
                self._active[slot] = request
                admitted.append((slot, request))
        return admitted

    def _next_prefill_batch(self, room: int) -> list[tuple[int, Request]]:
        """The oldest admitted prompt and up to `prefill_rows - 1` more of its length bucket,
        as many as `room` tokens hold (the oldest always); cancelled ones are gone already."""
        self._pending = [(s, r) for s, r in self._pending if self._active[s] is r]
        if not self._pending:
            return []
        width = self._bucket(self._pending[0][1])
        batch = [p for p in self._pending if self._bucket(p[1]) == width]
        batch = batch[: max(1, min(self.prefill_batches[-1], room // width))]
        self._pending = [p for p in self._pending if p not in batch]
        return batch

    def _bucket(self, request: Request) -> int:
        return next(b for b in self.buckets if len(request.prompt) <= b)

    def _run_prefill(self, batch: list[tuple[int, Request]]) -> int:
        """Prefills one batch; returns the tokens it ran (padding included)."""
        if not batch:
            return self.prefill_budget
        width = self._bucket(batch[0][1])
        rows = next(b for b in self.prefill_batches if len(batch) <= b)
        self.prefill_calls[rows] += 1
        tokens = np.zeros((rows, width), np.int32)
        positions = np.full((rows, width), self.max_seq_len, np.int32)
        slots, last = np.zeros(rows, np.int32), np.zeros(rows, np.int32)
        for i, (slot, request) in enumerate(batch):
            n = len(request.prompt)
            tokens[i, :n] = request.prompt
            positions[i] = np.arange(width)
            slots[i], last[i] = slot, n - 1
        layout = [r for _, r in batch] + [None] * (rows - len(batch))
        logits, first, self._cache = self._prefill(
            self._state, tokens, positions, self._cache, slots, last, self._lora(layout),
            self._sampling(layout), attend_len=width,
        )  # fmt: skip
        chosen = np.asarray(first)
        for i, (slot, request) in enumerate(batch):
            token = self._host_choice(request, logits, i) if request.params.on_host else chosen[i]
            self._accept_token(slot, request, int(token))
        return rows * width

    def _sampling(self, layout: Sequence[Request | None]) -> SamplingRows:
        return SamplingRows.build(
            [r.params if r else None for r in layout], [r.key if r else None for r in layout]
        )

    def _run_decode(self) -> None:
        live = [(s, r) for s, r in enumerate(self._active) if r is not None and r.generated]
        width = next(b for b in self.batch_buckets if len(live) <= b)
        self.decode_widths[width] += 1
        # A full-width batch runs every slot in place (row i is slot i); a narrower one names
        # the slots it runs. Padding rows sit past the cache's end: their writes are dropped.
        if width == self.slots:
            layout: list[Request | None] = [r if r and r.generated else None for r in self._active]
            slot_of = list(range(self.slots))
        else:
            layout = [r for _, r in live] + [None] * (width - len(live))
            slot_of = [s for s, _ in live] + [0] * (width - len(live))
        tokens = np.zeros(width, np.int32)
        positions = np.full(width, self.max_seq_len, np.int32)
        produced, budget = np.ones(width, np.int32), np.ones(width, np.int32)
        for i, request in enumerate(layout):
            if request is not None:
                tokens[i] = request.generated[-1]
                positions[i] = len(request.prompt) + len(request.generated) - 1
                produced[i], budget[i] = len(request.generated), request.params.max_tokens
        steps = self._steps(layout, produced, budget)
        # Attend far enough for the longest row's last step (a row stops at its budget).
        reach = max(
            min(positions[i] + steps, len(r.prompt) + r.params.max_tokens)
            for i, r in enumerate(layout)
            if r is not None
        )
        attend_len = next(b for b in self.length_buckets if reach <= b)
        started = time.perf_counter()
        out, self._cache = self._call_decode(
            tokens, positions, None if width == self.slots else np.array(slot_of, np.int32),
            self._lora(layout), self._sampling(layout), produced, budget, steps, attend_len,
        )  # fmt: skip
        produced_tokens = np.asarray(out.tokens)
        ran = max(1, int((produced_tokens >= 0).sum(axis=1).max()))
        self.decode_steps[ran] += 1
        elapsed = (time.perf_counter() - started) / ran
        self.step_seconds = 0.9 * self.step_seconds + 0.1 * elapsed
        for i, request in enumerate(layout):
            if request is None:
                continue
            if request.params.on_host:  # one step: sampled here from the step's logits
                self._accept_token(slot_of[i], request, self._host_choice(request, out.logits, i))
                continue
            for token in produced_tokens[i]:
                if token < 0 or self._active[slot_of[i]] is not request:
                    break
                self._accept_token(slot_of[i], request, int(token))

    def _steps(self, layout: Sequence[Request | None], produced: Any, budget: Any) -> int:
        """Steps for the next decode call: one while prompts wait for prefill or a row samples
        on the host; else the horizon, cut to the first row's budget when requests wait for a
        slot (so its slot is refilled as soon as it frees)."""
        live = [r for r in layout if r is not None]
        if self._pending or any(r.params.on_host for r in live):
            return 1
        if self._waiting:
            left = min(int(b - p) for b, p, r in zip(budget, produced, layout, strict=True) if r)
            return max(1, min(self.horizon, left))
        return self.horizon

    def _call_decode(
        self, tokens: Any, positions: Any, rows: Any, lora: LoraBatch | None,
        sampling: SamplingRows, produced: Any, budget: Any, steps: int, attend_len: int,
    ) -> tuple[DecodeOut, KVCache]:  # fmt: skip
        args = self._decode_args(tokens, positions, rows, lora, sampling, produced, budget, steps)
        out, cache = self._decode(*args, attend_len=attend_len, horizon=self.horizon)
        return out, cache

    def _decode_args(
        self, tokens: Any, positions: Any, rows: Any, lora: LoraBatch | None,
        sampling: SamplingRows, produced: Any, budget: Any, steps: int,
    ) -> tuple[Any, ...]:  # fmt: skip
        """The decode program's arguments, laid out one way for serving and preparing."""
        return (self._state, tokens, positions, self._cache, rows, lora, sampling, produced,
                budget, self._stop_array, np.int32(steps))  # fmt: skip

    def _host_choice(self, request: Request, logits: Any, row: int) -> int:
        """A token sampled on the host from a batch row's logits (after the request's logits
        processor): rows with a logit bias or copy-aware decoding."""
        values = np.asarray(logits)[row]
        if request.processor is not None:
            values = request.processor(values, request.generated)
        return sample(values, request.params, request.rng)

    def _accept_token(self, slot: int, request: Request, token: int) -> None:
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
        visible = hold_back(text, request.params.stop)
        delta, request.emitted = visible[len(request.emitted) :], visible
        request.on_event(TokenEvent(request.request_id, delta, token, time.monotonic()))
        if len(request.generated) >= request.params.max_tokens:
            self._finish(slot, request, "length", text=text)
        elif request.deadline is not None and time.monotonic() >= request.deadline:
            self._finish(slot, request, "timeout", text=text)

    def _finish(
        self, slot: int | None, request: Request, reason: FinishReason, *, text: str | None = None
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


def default_adapter_widths() -> tuple[int, ...]:
    """Adapter widths to compile: on the CPU only 3 (a row with one adapter reads two zero
    slots besides), because XLA:CPU maps each compiled program's code into memory separately
    (about 590 mappings a program here) and the service's 78 shapes with widths 1 and 3 held
    63,988 mappings once ready, against the kernel's default limit of 65,530 (cold start 305 s,
    warm 104 s: `python -m bench.start`); on an accelerator both 1 and 3."""
    return (MAX_ADAPTERS_PER_REQUEST,) if jax.default_backend() == "cpu" else (1, 3)


def default_prefill_rows() -> int:
    """Prompts per prefill call: one on the CPU, where one prompt already keeps the cores busy
    (measured: docs/benchmarks.md), eight on an accelerator, where one prompt leaves most of
    the device idle."""
    return 1 if jax.default_backend() == "cpu" else 8


def _powers_of_two(limit: int) -> tuple[int, ...]:
    return tuple(sorted({min(1 << k, limit) for k in range(0, 16)}))
