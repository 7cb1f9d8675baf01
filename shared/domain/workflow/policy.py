"""Retries and timeouts for one workflow node: the node's own `timeout_ms` /
`max_retries` / `backoff_ms`, else the workflow's `node_timeout_ms` / `max_retries` /
`backoff_ms`, capped at 60 s and 3 retries; and the loop that applies them with tenacity's
exponential back-off (x4: 1 s then 4 s by default). A `/v1/tools/run` call uses the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from shared.platform.runtime.deadline import Progress, within, within_progress

T = TypeVar("T")

DEFAULT_NODE_TIMEOUT_S = 15.0
MAX_NODE_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_CAP = 3
DEFAULT_BACKOFF_S = 1.0
BACKOFF_FACTOR = 4.0


@dataclass(frozen=True)
class NodePolicy:
    """Retries and timeouts for one node."""

    timeout_s: float = DEFAULT_NODE_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S  # the first wait; then x4 each retry


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _setting(node: Mapping[str, Any], workflow: Mapping[str, Any], key: str, wf_key: str) -> Any:
    own = number(node.get(key))
    return own if own is not None else number(workflow.get(wf_key))


def node_policy(node: Mapping[str, Any], workflow: Mapping[str, Any]) -> NodePolicy:
    """The node's policy: its own fields, else the workflow's defaults, capped."""
    timeout_ms = _setting(node, workflow, "timeout_ms", "node_timeout_ms")
    retries = _setting(node, workflow, "max_retries", "max_retries")
    backoff_ms = _setting(node, workflow, "backoff_ms", "backoff_ms")
    timeout_s = DEFAULT_NODE_TIMEOUT_S if timeout_ms is None else timeout_ms / 1000
    max_retries = DEFAULT_MAX_RETRIES if retries is None else int(retries)
    return NodePolicy(
        timeout_s=min(max(timeout_s, 0.001), MAX_NODE_TIMEOUT_S),
        max_retries=min(max(max_retries, 0), MAX_RETRIES_CAP),
        backoff_s=DEFAULT_BACKOFF_S if backoff_ms is None else max(backoff_ms / 1000, 0.0),
    )


async def call_with_policy(
    fn: Callable[[], Awaitable[T]],
    policy: NodePolicy,
    *,
    retry_if: Callable[[BaseException], bool],
    progress: Progress | None = None,
    budget_s: float = 0.0,
) -> tuple[T, int]:
    """Await `fn()` with a per-attempt timeout, retrying failures `retry_if` accepts.

    Returns (result, attempts); after the last attempt its exception propagates (a timeout as
    `TimeoutError`). Each wait is `backoff_s * 4**(n-1)`, capped at the node timeout.
    Cancellation is never retried or swallowed. With `progress`, the timeout is one of
    progress: an attempt still streaming tokens runs on, up to `timeout + budget_s`.
    """
    attempts = 0

    async def attempt() -> T:
        nonlocal attempts
        attempts += 1
        if progress is None:
            return await within(fn, policy.timeout_s)
        return await within_progress(
            fn, policy.timeout_s, progress=progress, budget_s=policy.timeout_s + budget_s
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait_exponential(
            multiplier=policy.backoff_s, exp_base=BACKOFF_FACTOR, max=policy.timeout_s
        ),
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and retry_if(exc)),
        reraise=True,
    )
    result: T = await retrying(attempt)
    return result, attempts
