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


class Progress:
    """When the work last showed it is alive (a token streamed, say). A deadline that watches
    it kills stalled work, never work that is still producing."""

    def __init__(self) -> None:
        self.last: float | None = None

    def beat(self) -> None:
        self.last = asyncio.get_running_loop().time()


async def within_progress(
    fn: Callable[[], Awaitable[T]],
    timeout_s: float,
    *,
    progress: Progress,
    budget_s: float,
) -> T:
    """Like `within`, but the deadline follows progress: the work fails once `timeout_s` has
    passed since its start *and* since its last beat (so a generation may run past its
    nominal timeout while tokens keep coming), and in any case after `budget_s` (at least
    `timeout_s`), the hard ceiling derived from the work's own budget (its `max_tokens`)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    ceiling = started + max(budget_s, timeout_s)
    work = asyncio.ensure_future(fn())
    try:
        while True:
            last = progress.last if progress.last is not None else started
            deadline = min(max(started, last) + timeout_s, ceiling)
            now = loop.time()
            if now >= deadline:
                break
            done, _ = await asyncio.wait({work}, timeout=deadline - now)
            if done:
                return work.result()
    except BaseException:
        await _stop(work)
        raise
    await _stop(work)
    idle = loop.time() - (progress.last or started)
    raise DeadlineExceeded(
        f"no progress for {idle:.0f} s"
        if loop.time() < ceiling
        else f"over its budget of {max(budget_s, timeout_s):g} s"
    )
