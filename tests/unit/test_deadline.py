"""`shared.runtime.deadline.within`: the deadline holds even when the work swallows a
cancellation (as Python 3.11's `asyncio.wait_for` inside redis-py can), and cancelling the
caller stops the work."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.runtime.deadline import DeadlineExceeded, within


async def test_the_result_comes_back_within_the_deadline() -> None:
    async def quick() -> int:
        await asyncio.sleep(0)
        return 7

    assert await within(quick, 1.0) == 7


async def test_work_that_swallows_one_cancellation_still_times_out() -> None:
    stages: list[str] = []

    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            stages.append("swallowed")  # what the 3.11 wait_for race does
        await asyncio.sleep(10)
        stages.append("finished")
        return "late"

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded):
        await within(stubborn, 0.02)
    assert stages == ["swallowed"] and loop.time() - started < 5


async def test_asyncio_timeout_alone_loses_that_deadline() -> None:
    """Why `within` exists: the same work under `asyncio.timeout` runs past its deadline."""

    async def stubborn() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        await asyncio.sleep(0.05)
        return "late"

    async with asyncio.timeout(0.01) as deadline:
        assert await stubborn() == "late"
    assert deadline.expired()


async def test_a_timeout_raised_inside_the_work_is_not_the_deadline() -> None:
    async def failing() -> None:
        raise TimeoutError("the tool's own")

    with pytest.raises(TimeoutError) as caught:
        await within(failing, 1.0)
    assert not isinstance(caught.value, DeadlineExceeded)


async def test_cancelling_the_caller_cancels_the_work() -> None:
    stopped = asyncio.Event()

    async def long() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    caller = asyncio.ensure_future(within(long, 30))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert stopped.is_set()
