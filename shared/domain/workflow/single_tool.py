"""One tool run outside a workflow: the same registry
(spec lookup, input/output schemas, circuit breaker) and the same node policy (retries with
backoff, per-attempt timeout, both capped) as a `tool_call` node inside a chat turn, so a
tool behaves here as it will in a workflow.

The caller may ask for a shorter timeout or fewer retries than the tool spec's; the caps of
`shared.domain.workflow.policy.node_policy` apply to both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shared.domain.tools.base import ToolContext
from shared.domain.tools.registry import ToolOutputInvalid, ToolRegistry
from shared.domain.workflow.engine import retryable, safe_error
from shared.domain.workflow.policy import NodePolicy, call_with_policy, node_policy
from shared.platform.errors import ServerError


@dataclass(frozen=True)
class ToolRun:
    tool: str
    output: dict[str, Any]
    attempts: int
    latency_ms: float
    usage: dict[str, int] = field(default_factory=dict)


class ToolRunFailed(ServerError):
    """The tool failed on every attempt (or timed out); the details say how, never with the
    tool's input or output."""

    status = 502


def policy_for(
    spec_timeout_ms: int | None,
    spec_retries: int | None,
    *,
    timeout_ms: int | None = None,
    max_retries: int | None = None,
) -> NodePolicy:
    return node_policy(
        {
            "timeout_ms": timeout_ms if timeout_ms is not None else spec_timeout_ms,
            "max_retries": max_retries if max_retries is not None else spec_retries,
        },
        {},
    )  # fmt: skip  (node_policy takes None as "not set")


async def run_tool(
    registry: ToolRegistry,
    name: str,
    inputs: dict[str, Any],
    ctx: ToolContext,
    *,
    timeout_ms: int | None = None,
    max_retries: int | None = None,
) -> ToolRun:
    spec = await registry.spec(name, ctx.user_id)
    policy = policy_for(spec.timeout_ms, spec.max_retries,
                        timeout_ms=timeout_ms, max_retries=max_retries)  # fmt: skip
    attempts, started = 0, time.perf_counter()

    async def attempt() -> dict[str, Any]:
        nonlocal attempts
        attempts += 1
        return await registry.run(name, inputs, ctx)

    try:
        output, _ = await call_with_policy(attempt, policy, retry_if=retryable)
    except TimeoutError:
        raise ToolRunFailed(
            f"tool {name!r} timed out after {policy.timeout_s:g} s",
            details=_failure(name, "timeout", attempts, policy),
        ) from None
    except ToolOutputInvalid as exc:
        raise ToolRunFailed(exc.message, details={
            **_failure(name, "invalid_output", attempts, policy), "problems": exc.details,
        }) from exc  # fmt: skip
    except Exception as exc:
        if not retryable(exc):
            raise  # the caller's or the configuration's error, with its own status
        raise ToolRunFailed(
            f"tool {name!r} failed after {attempts} attempt(s)",
            details={**_failure(name, "tool_error", attempts, policy), "error": safe_error(exc)},
        ) from exc
    usage = {"prompt_tokens": ctx.ledger.prompt_tokens,
             "completion_tokens": ctx.ledger.completion_tokens}  # fmt: skip
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ToolRun(tool=name, output=output, attempts=attempts, latency_ms=latency_ms, usage=usage)


def _failure(name: str, reason: str, attempts: int, policy: NodePolicy) -> dict[str, Any]:
    timeout_ms = round(policy.timeout_s * 1000)
    return {"tool": name, "reason": reason, "attempts": attempts,
            "timeout_ms": timeout_ms, "max_retries": policy.max_retries}  # fmt: skip
