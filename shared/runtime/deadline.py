"""A deadline for one awaitable that a lost cancellation cannot defeat.

`asyncio.timeout` enforces its deadline by cancelling the current task once. On Python 3.11,
`asyncio.wait_for` swallows a cancellation that arrives just as its inner future completes
(bpo-42130, fixed by the 3.12 rewrite of `wait_for`), and redis-py awaits every command write
through `wait_for`: a timeout that fires during a Redis call is lost and the rest of the call
runs with no deadline at all (seen here: a tool run with a 1 ms timeout finished its whole
model call). So the work runs as a child task and the caller waits with `asyncio.wait`, which
never cancels anything itself: at the deadline the caller raises `TimeoutError` whatever the
child does, and the child is cancelled again until it stops (or, past a grace period, left
to finish on its own with its outcome logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

STOP_GRACE_S = 2.0
RECANCEL_EVERY_S = 0.05


class DeadlineExceeded(TimeoutError):
    """Raised by `within` itself (a TimeoutError from inside the work passes unchanged)."""


async def within(fn: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """`await fn()`, or `TimeoutError` once `timeout_s` has passed (even if the work would
    finish later). Cancelling the caller cancels the work and waits for it to stop, as
    `asyncio.timeout` would."""
    work = asyncio.ensure_future(fn())
    try:
        done, _ = await asyncio.wait({work}, timeout=timeout_s)
    except BaseException:
        await _stop(work)
        raise
    if not done:
        await _stop(work)
        raise DeadlineExceeded(f"no result within {timeout_s:g} s")
    return work.result()


async def _stop(work: asyncio.Future[T]) -> None:
    """Cancels `work` until it is done or the grace period is over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_GRACE_S
    try:
        while not work.done() and loop.time() < deadline:
            work.cancel()
            await asyncio.wait({work}, timeout=RECANCEL_EVERY_S)
    finally:
        if not work.done():
            log.warning("work ignored cancellation for %.1f s; left to finish", STOP_GRACE_S)
        work.add_done_callback(_consume)


def _consume(work: asyncio.Future[T]) -> None:
    """Retrieves the outcome of work nobody awaits any more, so a failure is logged once
    instead of asyncio's "exception was never retrieved"."""
    if not work.cancelled() and work.exception() is not None:
        log.info("stopped work ended with %r", work.exception())
