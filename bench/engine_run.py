"""One engine request's events, as the engine benchmarks collect them. Imports only the model
package (bench/engine_random.py runs where the stack's libraries are absent)."""

from __future__ import annotations

import threading
import time

from shared.neural.engine import DoneEvent, TokenEvent


class Run:
    """Collects one request's events: when it was submitted, each token's time, the result."""

    def __init__(self) -> None:
        self.submitted = time.monotonic()
        self.token_times: list[float] = []
        self.done = threading.Event()
        self.result: DoneEvent | None = None

    def __call__(self, event: object) -> None:
        if isinstance(event, TokenEvent):
            self.token_times.append(event.at)
        elif isinstance(event, DoneEvent):
            self.result = event
            self.done.set()
