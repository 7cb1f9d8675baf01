"""A chat turn does not fail because one adapter is unusable: a model call the service refuses
for an adapter is made again without it, and the answer says which adapters it went without.

What the local inference service refuses, before it generates anything (functions/inference
`errors.adapter_refusals`): 404 `model_not_found` for an adapter whose rows are gone (deleted
between routing and generation, or never visible), 422 `adapter_unusable` for one whose files
are missing from the object store, fail the checksum recorded at publish, or do not parse. The
client raises these as `ModelRefused` with the service's code; any other code (a prompt over
the context window, a bad parameter) is no refusal of an adapter. The service's messages name
the adapter (`adapter '<id>' not found`, `adapter file .../adapters/<id>/v0001/... is missing
from the store`, `adapter <id> v1: the files' checksum does not match ...`), and ids are UUIDs,
so an id of the request found in the message identifies the refused adapter exactly. A refusal
that names none of them (a file that does not parse) is answered by going without every
adapter whose weights were sent. A backend that raises a plain ValidationError (no code) is
read the same way, by its message.

Everything else (the service down or slow, its queue or its adapter slots full, a stream
broken after its first token) is no refusal of an adapter: it passes through unchanged to the
retries and fallbacks that already handle it (the client's retries and circuit breaker, the
workflow's node policy, the turn's `finish_reason`).

Each call retries at most once per adapter it sent (every retry goes without at least one
more), so a call with one unusable adapter is made twice. The retry comes before any text was
read, so a streamed answer reaches the client as one normal answer. The skips ride on the
answer's adapter `trace` (`adapter_skipped` entries) into the turn's ledger, from which the
turn stores them beside the adapters applied (`skipped_adapters`). A hybrid adapter whose
weights are refused keeps its prompt fallback (its instructions), as when its weights cannot
run at all (`shared.domain.llm.adapter_plan`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from shared.domain.llm.backend import (
    AdapterUse,
    Completion,
    Delta,
    GenerationParams,
    LLMBackend,
    Message,
    TokenCount,
)
from shared.domain.llm.local import ModelRefused
from shared.platform.errors import ValidationError

log = logging.getLogger("chat")
SKIPPED = "adapter_skipped"  # the `event` of a skip in an answer's adapter trace
DROPPED = "adapter_dropped"  # the `event` of an adapter the request's plan could not send
ADAPTER_CODES = frozenset({"model_not_found", "adapter_unusable"})  # the service's codes


@dataclass(frozen=True)
class Refusal:
    """The adapters a refused call goes without, and why (`reason`: `not_found`,
    `files_missing`, `checksum_mismatch` or `refused`). `named`: the service's message named
    them; else they are every adapter whose weights were sent."""

    ids: tuple[str, ...]
    reason: str
    named: bool
    message: str


def classify(exc: BaseException, sent: Sequence[AdapterUse]) -> Refusal | None:
    """What `exc`, raised by a model call that sent the weights of `sent`, says about those
    adapters; None when it is no refusal of the request (an outage, a timeout, back-pressure)
    or when no adapter weights were sent (going without adapters cannot help then)."""
    if not sent or not isinstance(exc, ValidationError):
        return None
    code = getattr(exc, "service_code", None)
    if isinstance(exc, ModelRefused) and code not in ADAPTER_CODES:
        return None  # the request itself was refused: going without adapters cannot help
    folded = exc.message.lower()
    named = tuple(dict.fromkeys(a.id for a in sent if a.id.lower() in folded))
    ids = named or tuple(dict.fromkeys(a.id for a in sent))
    reason = "not_found" if code == "model_not_found" else _reason(folded)
    return Refusal(ids, reason, bool(named), exc.message)


def _reason(folded: str) -> str:
    if "checksum" in folded:
        return "checksum_mismatch"
    if "missing" in folded:
        return "files_missing"
    if "not found" in folded:
        return "not_found"
    return "refused"


def skipped_adapters(trace: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The adapters a turn went without, once each, from its model calls' adapter trace: those
    the service refused (`adapter_skipped`) and those the request's plan could not send
    (`adapter_dropped`: `mode_incompatible`, `max_adapters`, `no_remote_id`,
    `no_prompt_instructions`). A dropped adapter whose instructions were still injected (a
    hybrid one beyond the backend's `max_adapters`) says so as a refused one does
    (`fallback: prompt`)."""
    seen: dict[str, dict[str, Any]] = {}
    prompted: set[str] = set()
    for entry in trace:
        event = entry.get("event")
        if event == "prompt_injected":
            prompted.add(entry["id"])
        elif event in (SKIPPED, DROPPED) and entry["id"] not in seen:
            seen[entry["id"]] = {k: v for k, v in entry.items() if k != "event"}
    for adapter_id, skipped in seen.items():
        if adapter_id in prompted:
            skipped.setdefault("fallback", "prompt")
    return list(seen.values())


class _Call:
    """One model call's routed adapters, less those the service has refused so far."""

    def __init__(
        self, routed: Sequence[AdapterUse], modes: Collection[str], request_id: str | None
    ):
        self.routed, self.modes, self.request_id = tuple(routed), modes, request_id
        self.refused: dict[str, Refusal] = {}

    @property
    def adapters(self) -> tuple[AdapterUse, ...]:
        kept = []
        for adapter in self.routed:
            if adapter.id not in self.refused:
                kept.append(adapter)
            elif adapter.mode == "hybrid":  # its weights are refused; its instructions are not
                kept.append(dataclasses.replace(adapter, mode="prompt"))
        return tuple(kept)

    def went_without(self, exc: BaseException) -> bool:
        """Whether `exc` refused adapters this call sent: they are left out from now on (and
        logged); False leaves `exc` to the caller."""
        sent = [a for a in self.adapters if a.mode != "prompt" and a.mode in self.modes]
        refusal = classify(exc, sent)
        if refusal is None:
            return False
        for adapter_id in refusal.ids:
            self.refused[adapter_id] = refusal
            log.warning(
                "adapter %s skipped for request %s: the model service refused it (%s): %s",
                adapter_id, self.request_id, refusal.reason, refusal.message,
                extra={"adapter_id": adapter_id, "skip_reason": refusal.reason},
            )  # fmt: skip
        return True

    def trace(self) -> tuple[dict[str, Any], ...]:
        return tuple(self._entry(a) for a in self.routed if a.id in self.refused)

    def _entry(self, adapter: AdapterUse) -> dict[str, Any]:
        refusal = self.refused[adapter.id]
        entry = {"event": SKIPPED, "id": adapter.id, "version": adapter.version,
                 "weight": adapter.weight, "reason": refusal.reason,
                 "named": refusal.named}  # fmt: skip
        if adapter.mode == "hybrid":
            entry["fallback"] = "prompt"
        return entry

    def finished(self, delta: Delta) -> Delta:
        """The finishing delta carries the skips, beside what the service applied."""
        if delta.finish_reason is None or not self.refused:
            return delta
        return dataclasses.replace(delta, trace=(*delta.trace, *self.trace()))


class AdapterFallback:
    """`backend` for the turn's model calls, going without the adapters it refuses. `modes`:
    the adapter modes whose weights `backend` takes (the others it drops by itself)."""

    def __init__(self, backend: LLMBackend, *, modes: Collection[str]):
        self.backend, self.modes = backend, frozenset(modes)

    async def complete(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> Completion:
        call = _Call(adapters, self.modes, request_id)
        while True:
            try:
                done = await self.backend.complete(
                    messages, params, request_id=request_id, adapters=call.adapters
                )
            except Exception as exc:
                if not call.went_without(exc):
                    raise
                continue
            if not call.refused:
                return done
            return dataclasses.replace(done, trace=(*done.trace, *call.trace()))

    async def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
        adapters: Sequence[AdapterUse] = (),
    ) -> AsyncIterator[Delta]:
        call = _Call(adapters, self.modes, request_id)
        while True:
            deltas = cast(
                AsyncGenerator[Delta, None],
                self.backend.stream(messages, params, request_id=request_id,
                                    adapters=call.adapters),
            )  # fmt: skip
            try:
                first = await anext(deltas)  # the request goes out here: refusals come first
            except StopAsyncIteration:
                return
            except Exception as exc:
                await deltas.aclose()
                if not call.went_without(exc):
                    raise
                continue
            break
        async with aclosing(deltas):  # a cancel closes the service's stream too
            yield call.finished(first)
            async for delta in deltas:
                yield call.finished(delta)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.backend.embed(texts)

    async def count_tokens(self, messages: Sequence[Message]) -> TokenCount:
        return await self.backend.count_tokens(messages)

    async def cancel(self, request_id: str) -> bool:
        return await self.backend.cancel(request_id)

    async def aclose(self) -> None:
        """The wrapped backend is its owner's to close."""
