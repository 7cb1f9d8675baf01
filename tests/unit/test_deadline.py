"""`shared.platform.runtime.deadline.within`: the deadline holds even when the work swallows a
cancellation (as Python 3.11's `asyncio.wait_for` inside redis-py can), and cancelling the
caller stops the work."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.platform.runtime.deadline import DeadlineExceeded, Progress, within, within_progress


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


# --- deadlines that follow progress ---------------------------------------------------------
async def _streaming(progress: Progress, *, beats: int, every_s: float) -> str:
    for _ in range(beats):
        await asyncio.sleep(every_s)
        progress.beat()
    return "done"


async def test_work_still_making_progress_runs_past_its_timeout() -> None:
    progress = Progress()
    result = await within_progress(
        lambda: _streaming(progress, beats=12, every_s=0.03), 0.1, progress=progress, budget_s=5
    )
    assert result == "done"  # 0.36 s of work under a 0.1 s timeout: it never stalled


async def test_work_that_stalls_times_out_one_timeout_after_its_last_beat() -> None:
    progress = Progress()

    async def stalls() -> None:
        await _streaming(progress, beats=3, every_s=0.03)
        await asyncio.sleep(10)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded, match="no progress"):
        await within_progress(stalls, 0.15, progress=progress, budget_s=5)
    assert 0.2 < loop.time() - started < 1.0


async def test_work_that_never_starts_times_out_like_within() -> None:
    progress = Progress()
    with pytest.raises(DeadlineExceeded):
        await within_progress(lambda: asyncio.sleep(10), 0.05, progress=progress, budget_s=5)


async def test_the_budget_is_a_ceiling_even_for_work_that_keeps_beating() -> None:
    progress = Progress()
    with pytest.raises(DeadlineExceeded, match="budget"):
        await within_progress(
            lambda: _streaming(progress, beats=1000, every_s=0.02),
            0.1,
            progress=progress,
            budget_s=0.3,
        )
