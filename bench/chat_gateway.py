"""The gateway process of `make bench-chat`: `python -m infra.gateway`, with the local inference
client's four calls timed.

Each call appends one JSON line `{"rid", "call", "ms"}` to the file named by BENCH_CHAT_TIMINGS,
`rid` being the request id of the chat turn it served (the context variable every log line
uses). Timing inside the gateway adds no network hop and needs no change to the kernel: the
bench subtracts a turn's model time from its wall time. Used by bench/chat.py only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from infra.gateway.__main__ import main
from shared.domain.llm.local import LocalInferenceBackend
from shared.platform.context import current_request_id

# Line-buffered: one small write per call (a few per turn), read by the bench afterwards.
_OUT = open(os.environ["BENCH_CHAT_TIMINGS"], "a", buffering=1)  # noqa: SIM115 - process-long


def _record(call: str, started: float) -> None:
    ms = (time.perf_counter() - started) * 1000
    _OUT.write(json.dumps({"rid": current_request_id(), "call": call, "ms": ms}) + "\n")


def _timed(call: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(self, *args, **kwargs)
        finally:
            _record(call, started)

    return wrapper


def _timed_stream(method: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """From the first read to the last delta: the request, queueing, prefill and decode."""

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        started = time.perf_counter()
        inner = method(self, *args, **kwargs)
        try:
            async for delta in inner:
                yield delta
        finally:
            await inner.aclose()  # type: ignore[attr-defined]
            _record("generate", started)

    return wrapper


_backend: Any = LocalInferenceBackend  # the class's methods are replaced for this process only
_backend.stream = _timed_stream(LocalInferenceBackend.stream)
_backend.complete = _timed("generate", LocalInferenceBackend.complete)  # summaries (folds)
_backend.count_tokens = _timed("tokenize", LocalInferenceBackend.count_tokens)
_backend.embed = _timed("embed", LocalInferenceBackend.embed)

if __name__ == "__main__":
    main()
