"""One tool run outside a workflow (`shared.domain.workflow.single_tool`) against a small fake
registry: the node policy's retries, timeouts and caps, and which failures are never retried."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import pytest

from shared.domain.llm.backend import LLMBackend
from shared.domain.tools.base import ToolContext, ToolSpec
from shared.domain.tools.breaker import CircuitOpen
from shared.domain.tools.registry import ToolOutputInvalid, ToolRegistry
from shared.domain.workflow.policy import NodePolicy
from shared.domain.workflow.single_tool import ToolRunFailed, policy_for, run_tool
from shared.platform.errors import NotFound, ValidationError

Impl = Callable[[], Awaitable[dict[str, Any]]]


class FakeRegistry:
    def __init__(self, impl: Impl, *, timeout_ms: int | None = None, retries: int | None = None):
        self.impl, self.calls = impl, 0
        self.spec_ = ToolSpec("t.x_v1", {"type": "object"}, {"type": "object"},
                              timeout_ms=timeout_ms, max_retries=retries)  # fmt: skip

    async def spec(self, name: str, user_id: str) -> ToolSpec:
        return self.spec_

    async def run(self, name: str, inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        self.calls += 1
        return await self.impl()


def failing(times: int, exc: Exception) -> Impl:
    seen = 0

    async def impl() -> dict[str, Any]:
        nonlocal seen
        seen += 1
        if seen <= times:
            raise exc
        return {"ok": True}

    return impl


def sleeping(seconds: float) -> Impl:
    async def impl() -> dict[str, Any]:
        import asyncio

        await asyncio.sleep(seconds)
        return {}

    return impl


CTX = ToolContext(user_id="u1", request_id="r1", backend=cast(LLMBackend, object()))


async def run(registry: FakeRegistry, **kw: Any) -> Any:
    return await run_tool(cast(ToolRegistry, registry), "t.x_v1", {}, CTX, **kw)


def test_policy_takes_the_request_then_the_spec_and_is_capped() -> None:
    assert policy_for(None, None) == NodePolicy(timeout_s=15.0, max_retries=2)
    assert policy_for(5000, 1) == NodePolicy(timeout_s=5.0, max_retries=1)
    assert policy_for(5000, 1, timeout_ms=200, max_retries=0) == NodePolicy(0.2, 0)
    assert policy_for(600_000, 9) == NodePolicy(timeout_s=60.0, max_retries=3)


async def test_a_flaky_tool_is_retried_and_the_attempts_reported() -> None:
    registry = FakeRegistry(failing(1, RuntimeError("boom")))
    done = await run(registry)  # one backoff wait: 1 s, as in a workflow
    assert done.output == {"ok": True} and done.attempts == 2 and registry.calls == 2


async def test_a_tool_failing_on_every_attempt_is_a_502_with_the_reason() -> None:
    registry = FakeRegistry(failing(10, RuntimeError("boom")))
    with pytest.raises(ToolRunFailed) as caught:
        await run(registry, max_retries=0)
    assert caught.value.status == 502 and registry.calls == 1
    assert caught.value.details == {"tool": "t.x_v1", "reason": "tool_error", "attempts": 1,
                                    "timeout_ms": 15000, "max_retries": 0,
                                    "error": "RuntimeError"}  # fmt: skip


async def test_each_attempt_is_timed_out() -> None:
    registry = FakeRegistry(sleeping(5), timeout_ms=20, retries=1)
    with pytest.raises(ToolRunFailed) as caught:
        await run(registry)
    assert caught.value.details["reason"] == "timeout"
    assert caught.value.details["attempts"] == 2 and registry.calls == 2


async def test_invalid_output_after_retries_names_the_problems() -> None:
    invalid = ToolOutputInvalid("bad output", details=[{"path": "/answer", "message": "x"}])
    registry = FakeRegistry(failing(10, invalid), retries=0)
    with pytest.raises(ToolRunFailed) as caught:
        await run(registry)
    assert caught.value.details["reason"] == "invalid_output"
    assert caught.value.details["problems"] == [{"path": "/answer", "message": "x"}]


@pytest.mark.parametrize(
    "exc",
    [ValidationError("bad input"), NotFound("no tool"), CircuitOpen("open")],
    ids=["invalid-input", "unknown-tool", "circuit-open"],
)
async def test_failures_a_retry_cannot_fix_are_raised_at_once(exc: Exception) -> None:
    registry = FakeRegistry(failing(10, exc), retries=3)
    with pytest.raises(type(exc)):
        await run(registry)
    assert registry.calls == 1
