"""The workflow engine: interprets `workflow.chat` artifacts.

A workflow is a graph of nodes run from `entrypoint` along `next`: `tool_call` runs a named tool
through a `ToolRunner` and merges its output into `vars`, `switch` picks the first branch whose
restricted `when` expression holds, `parallel` fans out to tool_call children and joins, `end`
stops (as does a node without `next`).

Design choices:
- The artifact is data that people and LLMs edit; JSON-Schema validation happens elsewhere, but
  every shape this module relies on is checked again here and a broken graph (unknown node id
  or type, malformed branch) ends the run with `WorkflowFailed`, never a KeyError.
- Node failures (tool exceptions, per-attempt timeouts, missing outputs) are retried per
  `NodePolicy` with tenacity's exponential backoff (x4: 1 s then 4 s by default). Deterministic
  failures are not (`NOT_RETRIED`: invalid input, unknown or forbidden tools, an open circuit
  breaker, template and expression errors), nor is anything after the node streamed a token
  to the user (a re-run would duplicate text).
- The node policy reads `timeout_ms` / `max_retries` / `backoff_ms` from the node, else
  `node_timeout_ms` / `max_retries` / `backoff_ms` from the workflow (its own `timeout_ms`
  bounds the whole run), capped at 60 s and 3 retries.
- Deadlines follow progress: a node attempt, and the run, fail once their timeout has passed
  since they started and since the last token streamed, never while an answer is still being
  written; `generation_budget_s` (the answer's `max_tokens` at the slowest acceptable rate) is
  the hard ceiling past the timeout. A node that streamed before failing is never retried.
- Parallel children run with `stream=False`: only a sequential node may stream tokens, so tokens
  a child emits are dropped. Children's own `on_error` is ignored; the parallel node's applies.
- The trace holds names, sizes and outcomes only, never tool inputs or outputs (user text):
  errors from tools are described by their error code or exception type.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.expressions.expr import ExpressionError, compile_expression
from shared.domain.tools.base import Emit, ToolContext, ToolRunner
from shared.domain.tools.breaker import CircuitOpen
from shared.domain.workflow.policy import NodePolicy, call_with_policy, node_policy, number
from shared.domain.workflow.templating import TemplateError, resolve
from shared.platform.errors import (
    AppError,
    Forbidden,
    NotFound,
    ServerError,
    ValidationError,
)
from shared.platform.runtime.deadline import DeadlineExceeded, Progress, within_progress

DEFAULT_WORKFLOW_TIMEOUT_S = 120.0
MAX_STEPS = 256

TraceHook = Callable[[dict[str, Any]], Awaitable[None]]


class WorkflowFailed(ServerError):
    """The run could not finish: a node failed without `on_error`, the graph is broken, the
    step limit or the workflow timeout was hit. `trace` holds the entries so far."""

    status = 502

    def __init__(
        self,
        node_id: str | None,
        reason: str,
        message: str,
        trace: list[dict[str, Any]],
        *,
        cause: str | None = None,
    ):
        super().__init__(message, details={"node": node_id, "reason": reason})
        self.node_id = node_id
        self.reason = reason
        self.trace = trace
        # The failing node's error code ("unavailable", "rate_limited", ...), when it had one.
        self.cause = cause


@dataclass(frozen=True)
class WorkflowResult:
    vars: dict[str, Any]
    trace: list[dict[str, Any]]
    outcome: str  # "ok" | "fallback" (an on_error path was taken)
    elapsed_ms: float


class OutputMissing(Exception):
    """A tool's result lacks a key the node lists in `outputs` (or is not an object)."""


class _Invalid(Exception):
    """The graph itself is broken; ends the run whatever `on_error` says."""


# Failures a retry cannot fix: the caller's input, a missing or forbidden tool, an open
# circuit breaker (retrying it would only hold the user longer), template/expression errors.
NOT_RETRIED = (ValidationError, NotFound, Forbidden, CircuitOpen, TemplateError, ExpressionError)


def retryable(exc: BaseException) -> bool:
    return not isinstance(exc, NOT_RETRIED)


@dataclass
class _Outcome:
    entry: dict[str, Any]
    next: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None  # safe for the trace
    detail: str | None = None  # fuller message for vars["error"]
    cause: str | None = None  # the error code of an AppError that failed the node


class _EmitWatch:
    """Wraps `ctx.emit` for one node: notes whether a token reached the user, and drops
    tokens from nodes that must not stream (parallel children)."""

    def __init__(self, emit: Emit, *, stream: bool, beats: tuple[Progress, ...] = ()):
        self._emit = emit
        self._stream = stream
        self._beats = beats
        self.tokens = False

    async def __call__(self, event: str, data: Any) -> None:
        if event == "token":
            if not self._stream:
                return
            self.tokens = True
            for progress in self._beats:  # a streaming generation is alive: deadlines follow
                progress.beat()
        await self._emit(event, data)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def safe_error(exc: BaseException, policy: NodePolicy | None = None) -> str:
    """An error description for the trace: no values that could hold user text."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {policy.timeout_s:g} s" if policy else "timed out"
    if isinstance(exc, TemplateError | ExpressionError | OutputMissing):
        return str(exc)
    if isinstance(exc, AppError):
        return exc.code
    return type(exc).__name__


def _detail(exc: BaseException, policy: NodePolicy | None = None) -> str:
    if isinstance(exc, TimeoutError):
        return safe_error(exc, policy)
    if isinstance(exc, AppError):
        return exc.message
    return str(exc) or type(exc).__name__


def _select_outputs(node: Mapping[str, Any], result: Any) -> dict[str, Any]:
    if not isinstance(result, Mapping):
        raise OutputMissing(f"tool returned {type(result).__name__}, not an object")
    wanted = node.get("outputs")
    if not wanted:
        return dict(result)
    missing = [key for key in wanted if key not in result]
    if missing:
        raise OutputMissing(f"tool output lacks {', '.join(map(str, missing))}")
    return {key: result[key] for key in wanted}


@dataclass
class _Run:
    workflow: Mapping[str, Any]
    nodes: dict[str, Mapping[str, Any]]
    inputs: Mapping[str, Any]
    vars: dict[str, Any]
    runner: ToolRunner
    ctx: ToolContext
    on_trace: TraceHook | None
    # Extra time a generation may take past a timeout while it keeps streaming tokens.
    budget_s: float = 0.0
    progress: Progress = field(default_factory=Progress)
    trace: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    steps: int = 0
    current: str | None = None
    current_started: float = 0.0

    async def record(self, entry: dict[str, Any]) -> None:
        self.trace.append(entry)
        if self.on_trace is not None:
            await self.on_trace(entry)

    def fail(
        self, node_id: str | None, reason: str, message: str, *, cause: str | None = None
    ) -> WorkflowFailed:
        return WorkflowFailed(node_id, reason, message, self.trace, cause=cause)

    def node(self, node_id: Any) -> Mapping[str, Any]:
        if not isinstance(node_id, str) or node_id not in self.nodes:
            raise _Invalid(f"unknown node {node_id!r}")
        return self.nodes[node_id]

    def count_steps(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise self.fail(
                self.current, "step_limit", f"step limit of {MAX_STEPS} node executions reached"
            )


def _index_nodes(workflow: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list):
        raise _Invalid("workflow has no node list")
    index: dict[str, Mapping[str, Any]] = {}
    for node in nodes:
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            raise _Invalid("every node needs a string id")
        if node["id"] in index:
            raise _Invalid(f"duplicate node id {node['id']!r}")
        index[node["id"]] = node
    return index


def _tool_name(node: Mapping[str, Any]) -> str:
    tool = node.get("tool")
    if not isinstance(tool, str) or not tool:
        raise _Invalid(f"tool_call node {node['id']!r} names no tool")
    return tool


async def _tool_call(run: _Run, node: Mapping[str, Any], *, in_parallel: bool) -> _Outcome:
    node_id, tool = node["id"], _tool_name(node)
    policy = node_policy(node, run.workflow)
    progress = Progress()
    watch = _EmitWatch(run.ctx.emit, stream=not in_parallel, beats=(progress, run.progress))
    ctx = dataclasses.replace(
        run.ctx,
        emit=watch,
        stream=run.ctx.stream and not in_parallel,
        extras={**run.ctx.extras, "workflow_node": node_id},
    )
    scope = {"input": run.inputs, "vars": run.vars}
    calls = 0

    async def attempt() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        tool_inputs = resolve(node.get("inputs") or {}, scope)
        return _select_outputs(node, await run.runner.run(tool, tool_inputs, ctx))

    def may_retry(exc: BaseException) -> bool:
        return not watch.tokens and retryable(exc)

    started = time.perf_counter()
    entry: dict[str, Any] = {"node": node_id, "type": "tool_call", "tool": tool}
    try:
        outputs, _ = await call_with_policy(
            attempt, policy, retry_if=may_retry, progress=progress, budget_s=run.budget_s
        )
    except Exception as exc:
        timed_out = isinstance(exc, TimeoutError)
        entry.update(
            outcome="timeout" if timed_out else "error",
            attempts=calls,
            latency_ms=_ms(started),
            error=safe_error(exc, policy),
        )
        cause = "timeout" if timed_out else exc.code if isinstance(exc, AppError) else None
        return _Outcome(entry, failure=entry["error"], detail=_detail(exc, policy), cause=cause)
    entry.update(outcome="ok", attempts=calls, latency_ms=_ms(started), outputs=sorted(outputs))
    return _Outcome(entry, next=node.get("next"), outputs=outputs)


def _switch(run: _Run, node: Mapping[str, Any]) -> _Outcome:
    started = time.perf_counter()
    entry: dict[str, Any] = {"node": node["id"], "type": "switch", "attempts": 1}
    branches = node.get("branches")
    if not isinstance(branches, list):
        raise _Invalid(f"switch node {node['id']!r} has no branch list")
    env = {**run.vars, "input": run.inputs, "vars": run.vars}
    failure = "no branch matched"
    for index, branch in enumerate(branches):
        if not isinstance(branch, Mapping) or not isinstance(branch.get("next"), str):
            raise _Invalid(f"switch node {node['id']!r}: branch {index} is malformed")
        try:
            taken = compile_expression(branch.get("when", "")).truthy(env)
        except ExpressionError as exc:
            failure = f"branch {index}: {exc}"
            break
        if taken:
            entry.update(outcome="ok", latency_ms=_ms(started), branch=index)
            return _Outcome(entry, next=branch["next"])
    entry.update(outcome="error", latency_ms=_ms(started), error=failure)
    return _Outcome(entry, failure=failure, detail=failure)


async def _parallel(run: _Run, node: Mapping[str, Any]) -> _Outcome:
    node_id, children = node["id"], node.get("children")
    if not isinstance(children, list) or not children:
        raise _Invalid(f"parallel node {node_id!r} has no children")
    child_nodes = [run.node(child) for child in children]
    for child in child_nodes:
        if child.get("type") != "tool_call":
            raise _Invalid(f"parallel node {node_id!r}: child {child['id']!r} is not a tool_call")
        _tool_name(child)
    run.count_steps(len(child_nodes))
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(_tool_call(run, c, in_parallel=True)) for c in child_nodes]
    outcomes = [task.result() for task in tasks]
    for outcome in outcomes:
        outcome.entry["parent"] = node_id
        await run.record(outcome.entry)
    entry: dict[str, Any] = {
        "node": node_id,
        "type": "parallel",
        "children": list(children),
        "attempts": 1,
        "latency_ms": _ms(started),
    }
    for child, outcome in zip(child_nodes, outcomes, strict=True):
        if outcome.failure is not None:
            failure = f"child {child['id']!r} failed: {outcome.failure}"
            entry.update(outcome="error", error=failure)
            return _Outcome(entry, failure=failure, detail=f"{child['id']}: {outcome.detail}")
    merged: dict[str, Any] = {}
    for outcome in outcomes:
        merged.update(outcome.outputs)
    entry["outcome"] = "ok"
    return _Outcome(entry, next=node.get("next"), outputs=merged)


async def _step(run: _Run, node: Mapping[str, Any]) -> _Outcome:
    kind = node.get("type")
    if kind == "tool_call":
        return await _tool_call(run, node, in_parallel=False)
    if kind == "switch":
        return _switch(run, node)
    if kind == "parallel":
        return await _parallel(run, node)
    if kind == "end":
        entry = {"node": node["id"], "type": "end", "outcome": "ok", "attempts": 1}
        return _Outcome({**entry, "latency_ms": 0.0})
    raise _Invalid(f"node {node['id']!r} has unknown type {kind!r}")


async def _execute(run: _Run) -> None:
    node_id: str | None = run.workflow.get("entrypoint")
    if not isinstance(node_id, str):
        raise _Invalid("workflow has no entrypoint")
    while node_id is not None:
        node = run.node(node_id)
        run.current, run.current_started = node_id, time.perf_counter()
        run.count_steps()
        outcome = await _step(run, node)
        entry = outcome.entry
        if outcome.failure is None:
            run.vars.update(outcome.outputs)
            if outcome.next is not None:
                entry["next"] = outcome.next
            await run.record(entry)
            node_id = outcome.next
            continue
        fallback = node.get("on_error")
        if not isinstance(fallback, str) or not fallback:
            await run.record(entry)
            reason = "node_timeout" if entry.get("outcome") == "timeout" else "node_failed"
            raise run.fail(
                node_id, reason, f"node {node_id!r} failed: {outcome.failure}",
                cause=outcome.cause,
            )  # fmt: skip
        run.vars["error"] = {"node": node_id, "message": outcome.detail or outcome.failure}
        run.fallback = True
        entry.update(outcome="fallback", next=fallback)
        await run.record(entry)
        node_id = fallback


def _workflow_timeout_s(workflow: Mapping[str, Any]) -> float:
    timeout_ms = number(workflow.get("timeout_ms"))
    return DEFAULT_WORKFLOW_TIMEOUT_S if timeout_ms is None else max(timeout_ms / 1000, 0.001)


async def run_workflow(
    workflow: Mapping[str, Any],
    *,
    inputs: Mapping[str, Any],
    runner: ToolRunner,
    ctx: ToolContext,
    vars_initial: Mapping[str, Any] | None = None,
    on_trace: TraceHook | None = None,
    generation_budget_s: float = 0.0,
) -> WorkflowResult:
    """Run `workflow` to its end; raise WorkflowFailed when it cannot finish.

    `generation_budget_s` (from the answer's `max_tokens`) is how far past a node's or the
    workflow's timeout a generation may run while it keeps streaming tokens: deadlines cut
    stalled work, never an answer that is still being written."""
    started = time.perf_counter()
    run = _Run(
        workflow=workflow,
        nodes={},
        inputs=inputs,
        vars=dict(vars_initial or {}),
        runner=runner,
        ctx=ctx,
        on_trace=on_trace,
        budget_s=max(generation_budget_s, 0.0),
    )

    async def body() -> None:
        run.nodes = _index_nodes(workflow)
        await _execute(run)

    try:
        timeout_s = _workflow_timeout_s(workflow)
        await within_progress(
            body, timeout_s, progress=run.progress, budget_s=timeout_s + run.budget_s
        )
    except _Invalid as exc:
        raise run.fail(run.current, "invalid_workflow", str(exc)) from None
    except DeadlineExceeded:
        node = run.nodes.get(run.current or "", {})
        entry: dict[str, Any] = {"node": run.current, "type": node.get("type")}
        if node.get("tool"):
            entry["tool"] = node["tool"]
        entry.update(
            outcome="timeout",
            attempts=1,
            latency_ms=_ms(run.current_started or started),
            error="workflow_timeout",
        )
        await run.record(entry)
        raise run.fail(
            run.current, "workflow_timeout", "workflow timed out", cause="timeout"
        ) from None
    return WorkflowResult(
        vars=run.vars,
        trace=run.trace,
        outcome="fallback" if run.fallback else "ok",
        elapsed_ms=_ms(started),
    )
