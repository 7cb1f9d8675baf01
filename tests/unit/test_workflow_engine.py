"""The workflow engine against a small fake ToolRunner (no I/O)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import pytest

from shared.domain.llm.backend import LLMBackend
from shared.domain.tools.base import ToolContext
from shared.domain.tools.breaker import CircuitOpen
from shared.domain.workflow.engine import MAX_STEPS, WorkflowFailed, run_workflow
from shared.domain.workflow.policy import NodePolicy, node_policy
from shared.domain.workflow.templating import TemplateError, resolve
from shared.platform.errors import NotFound, Unavailable, ValidationError

Impl = Callable[[Mapping[str, Any], ToolContext], Awaitable[dict[str, Any]]]
FAST = {"backoff_ms": 1}  # retries without the real 1 s / 4 s waits


class FakeRunner:
    def __init__(self, tools: Mapping[str, Impl]):
        self.tools = dict(tools)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def run(self, name: str, inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        self.calls.append((name, dict(inputs)))
        return await self.tools[name](inputs, ctx)

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)


def returning(**out: Any) -> Impl:
    async def impl(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return dict(out)

    return impl


def failing(times: int, exc: Exception | None = None, **out: Any) -> Impl:
    """Raises `exc` on the first `times` calls, then returns `out`."""
    seen = 0

    async def impl(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        nonlocal seen
        seen += 1
        if seen <= times:
            raise exc or RuntimeError("boom")
        return dict(out)

    return impl


def sleeping(seconds: float) -> Impl:
    async def impl(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return {}

    return impl


def context(emitted: list[tuple[str, Any]] | None = None) -> ToolContext:
    async def emit(event: str, data: Any) -> None:
        if emitted is not None:
            emitted.append((event, data))

    return ToolContext(user_id="u1", request_id="r1", backend=cast(LLMBackend, object()), emit=emit)


def workflow(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"kind": "workflow.chat", "entrypoint": nodes[0]["id"], "nodes": list(nodes), **extra}


def tool_node(node_id: str, tool: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "tool_call", "tool": tool or node_id, **FAST, **fields}


async def run(
    wf: Mapping[str, Any], runner: FakeRunner, inputs: Mapping[str, Any] | None = None, **kw: Any
):
    return await run_workflow(
        wf,
        inputs=inputs or {"message": "hi"},
        runner=runner,
        ctx=kw.pop("ctx", None) or context(),
        **kw,
    )


async def failed(wf: Mapping[str, Any], runner: FakeRunner, **kw: Any) -> WorkflowFailed:
    with pytest.raises(WorkflowFailed) as info:
        await run(wf, runner, **kw)
    return info.value


# --- the SPEC §6.1 example graph -----------------------------------------------------------

SPEC_EXAMPLE = {
    "kind": "workflow.chat",
    "entrypoint": "node_classify",
    "nodes": [
        {
            "id": "node_classify",
            "type": "tool_call",
            "tool": "llm.intent_classifier_v1",
            "inputs": {"message": "${input.message}"},
            "outputs": ["intent"],
            "next": "node_route",
        },
        {
            "id": "node_route",
            "type": "switch",
            "branches": [
                {"when": "intent in ['qa_with_docs','analysis']", "next": "node_rag"},
                {"when": "intent == 'code_edit'", "next": "node_code_agent"},
                {"when": "true", "next": "node_plain"},
            ],
        },
        {
            "id": "node_rag",
            "type": "tool_call",
            "tool": "rag.answer_with_context_v1",
            "inputs": {"message": "${input.message}"},
        },
        {
            "id": "node_code_agent",
            "type": "tool_call",
            "tool": "agent.code_v1",
            "inputs": {"message": "${input.message}"},
        },
        {
            "id": "node_plain",
            "type": "tool_call",
            "tool": "llm.generic_chat_v1",
            "inputs": {"message": "${input.message}"},
        },
    ],
}


@pytest.mark.parametrize(
    ("intent", "node", "branch"),
    [
        ("qa_with_docs", "node_rag", 0),
        ("analysis", "node_rag", 0),
        ("code_edit", "node_code_agent", 1),
        ("small_talk", "node_plain", 2),
    ],
)
async def test_spec_example_takes_the_branch_for_each_intent(
    intent: str, node: str, branch: int
) -> None:
    async def classify(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        assert inputs == {"message": "secret user text"}
        return {"intent": intent, "confidence": 0.9}

    runner = FakeRunner(
        {
            "llm.intent_classifier_v1": classify,
            "rag.answer_with_context_v1": returning(answer="rag"),
            "agent.code_v1": returning(answer="code"),
            "llm.generic_chat_v1": returning(answer="plain"),
        }
    )
    result = await run(SPEC_EXAMPLE, runner, {"message": "secret user text"})

    assert [entry["node"] for entry in result.trace] == ["node_classify", "node_route", node]
    assert result.trace[1]["branch"] == branch and result.trace[1]["next"] == node
    assert result.vars == {
        "intent": intent,
        "answer": {"node_rag": "rag", "node_code_agent": "code", "node_plain": "plain"}[node],
    }
    assert result.outcome == "ok" and all(e["outcome"] == "ok" for e in result.trace)
    dumped = json.dumps(result.trace)  # serialisable, and free of user text and outputs
    assert "secret user text" not in dumped and intent not in dumped


# --- retries and timeouts ------------------------------------------------------------------


async def test_a_flaky_tool_is_retried() -> None:
    runner = FakeRunner({"flaky": failing(2, answer="ok")})
    result = await run(workflow(tool_node("flaky")), runner)
    assert result.vars == {"answer": "ok"}
    assert result.trace[0]["attempts"] == 3 and result.trace[0]["outcome"] == "ok"


async def test_a_tool_failing_past_its_retries_fails_the_run() -> None:
    runner = FakeRunner({"flaky": failing(4, Unavailable("down"), answer="ok")})
    error = await failed(workflow(tool_node("flaky", max_retries=3)), runner)
    assert error.node_id == "flaky" and error.reason == "node_failed" and error.status == 502
    assert error.trace[0]["attempts"] == 4 and error.trace[0]["outcome"] == "error"
    assert error.trace[0]["error"] == "unavailable"


async def test_an_open_circuit_or_unknown_tool_is_not_retried() -> None:
    runner = FakeRunner(
        {"open": failing(9, CircuitOpen("open")), "gone": failing(9, NotFound("x"))}
    )
    for name in ("open", "gone"):
        error = await failed(workflow(tool_node(name, max_retries=3)), runner)
        assert runner.count(name) == 1 and error.trace[0]["attempts"] == 1


async def test_retries_are_capped_at_three() -> None:
    runner = FakeRunner({"bad": failing(100)})
    error = await failed(workflow(tool_node("bad", max_retries=10)), runner)
    assert runner.count("bad") == 4 and error.trace[0]["attempts"] == 4


def test_node_policy_defaults_overrides_and_caps() -> None:
    assert node_policy({}, {}) == NodePolicy(timeout_s=15.0, max_retries=2, backoff_s=1.0)
    assert node_policy({"timeout_ms": 600_000, "max_retries": 10}, {}) == NodePolicy(
        timeout_s=60.0, max_retries=3, backoff_s=1.0
    )
    wf = {"timeout_ms": 90_000, "max_retries": 1, "backoff_ms": 200, "node_timeout_ms": 5000}
    assert node_policy({}, wf) == NodePolicy(timeout_s=5.0, max_retries=1, backoff_s=0.2)
    assert node_policy({"max_retries": 0, "backoff_ms": 10}, wf).max_retries == 0
    assert node_policy({"max_retries": -1, "timeout_ms": True}, {}) == NodePolicy(max_retries=0)


async def test_a_slow_tool_times_out_is_retried_then_fails() -> None:
    runner = FakeRunner({"slow": sleeping(30)})
    error = await failed(workflow(tool_node("slow", timeout_ms=50, max_retries=1)), runner)
    assert error.reason == "node_timeout" and runner.count("slow") == 2
    assert error.trace[0]["outcome"] == "timeout" and error.trace[0]["attempts"] == 2


async def test_the_workflow_timeout_bounds_the_run() -> None:
    runner = FakeRunner({"first": returning(a=1), "slow": sleeping(30)})
    wf = workflow(tool_node("first", next="slow"), tool_node("slow"), timeout_ms=100)
    error = await failed(wf, runner)
    assert error.reason == "workflow_timeout" and error.node_id == "slow"
    assert [(e["node"], e["outcome"]) for e in error.trace] == [
        ("first", "ok"),
        ("slow", "timeout"),
    ]
    assert error.trace[-1]["error"] == "workflow_timeout"


def streaming(tokens: int, every_s: float, *, then_stall: bool = False) -> Impl:
    """A generation: one token every `every_s` through `ctx.emit`, then its answer."""

    async def impl(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        for n in range(tokens):
            await asyncio.sleep(every_s)
            await ctx.emit("token", f"t{n} ")
        if then_stall:
            await asyncio.sleep(30)
        return {"answer": "".join(f"t{n} " for n in range(tokens))}

    return impl


async def test_a_generation_still_streaming_is_not_cut_by_its_node_or_workflow_timeout() -> None:
    emitted: list[tuple[str, Any]] = []
    runner = FakeRunner({"gen": streaming(15, 0.03)})  # ~0.45 s of tokens
    wf = workflow(tool_node("gen", timeout_ms=150, max_retries=0), timeout_ms=200)
    result = await run(wf, runner, ctx=context(emitted), generation_budget_s=5)
    assert result.vars["answer"].count("t") == 15 and runner.count("gen") == 1
    assert sum(1 for event, _ in emitted if event == "token") == 15


async def test_a_generation_that_stalls_times_out_with_its_tokens_kept_by_the_caller() -> None:
    emitted: list[tuple[str, Any]] = []
    runner = FakeRunner({"gen": streaming(3, 0.02, then_stall=True)})
    wf = workflow(tool_node("gen", timeout_ms=150, max_retries=2))
    error = await failed(wf, runner, ctx=context(emitted), generation_budget_s=5)
    assert error.reason == "node_timeout" and error.cause == "timeout"
    assert runner.count("gen") == 1  # tokens reached the user: a retry would repeat them
    assert [data for event, data in emitted if event == "token"] == ["t0 ", "t1 ", "t2 "]


async def test_without_a_generation_budget_the_timeout_is_a_fixed_ceiling() -> None:
    runner = FakeRunner({"gen": streaming(40, 0.02)})
    error = await failed(workflow(tool_node("gen", timeout_ms=150, max_retries=0)), runner)
    assert error.reason == "node_timeout" and error.cause == "timeout"


async def test_a_failing_node_reports_its_error_code_as_the_cause() -> None:
    runner = FakeRunner({"down": failing(9, Unavailable("model gone"))})
    error = await failed(workflow(tool_node("down", max_retries=0)), runner)
    assert error.cause == "unavailable"


async def test_validation_errors_from_the_runner_are_not_retried() -> None:
    runner = FakeRunner({"strict": failing(100, ValidationError("bad input"))})
    error = await failed(workflow(tool_node("strict")), runner)
    assert runner.count("strict") == 1 and error.trace[0]["error"] == "validation_error"


async def test_a_node_that_streamed_a_token_is_not_retried() -> None:
    async def streams_then_fails(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        assert ctx.stream
        await ctx.emit("token", "Hel")
        raise RuntimeError("connection reset")

    emitted: list[tuple[str, Any]] = []
    runner = FakeRunner({"chat": streams_then_fails})
    error = await failed(workflow(tool_node("chat")), runner, ctx=context(emitted))
    assert runner.count("chat") == 1 and error.trace[0]["attempts"] == 1
    assert emitted == [("token", "Hel")]


async def test_cancellation_propagates() -> None:
    started = asyncio.Event()

    async def hangs(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(30)
        return {}

    task = asyncio.create_task(run(workflow(tool_node("hang")), FakeRunner({"hang": hangs})))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- on_error --------------------------------------------------------------------------------


async def test_on_error_takes_the_fallback_path() -> None:
    runner = FakeRunner({"bad": failing(100), "apology": returning(answer="sorry")})
    wf = workflow(
        tool_node("bad", max_retries=1, on_error="apology", next="never"), tool_node("apology")
    )
    result = await run(wf, runner)
    assert result.outcome == "fallback" and result.vars["answer"] == "sorry"
    assert result.vars["error"] == {"node": "bad", "message": "boom"}
    assert [(e["node"], e["outcome"]) for e in result.trace] == [
        ("bad", "fallback"),
        ("apology", "ok"),
    ]
    assert result.trace[0]["next"] == "apology" and result.trace[0]["attempts"] == 2


# --- parallel ----------------------------------------------------------------------------------


def barrier_pair() -> tuple[Impl, Impl]:
    """Two tools that only finish once both have started: a sequential run would time out."""
    started: list[str] = []
    both = asyncio.Event()

    def tool(name: str) -> Impl:
        async def impl(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
            assert not ctx.stream
            await ctx.emit("token", "dropped: children never stream")
            started.append(name)
            if len(started) == 2:
                both.set()
            await both.wait()
            return {name: inputs["n"], "shared": name}

        return impl

    return tool("a"), tool("b")


def parallel_workflow(children: list[str], **fields: Any) -> dict[str, Any]:
    return workflow(
        {"id": "fan", "type": "parallel", "children": children, "next": "after", **fields},
        tool_node("a", inputs={"n": 1}, timeout_ms=2000, max_retries=0),
        tool_node("b", inputs={"n": 2}, timeout_ms=2000, max_retries=0),
        tool_node("after", inputs={"got": "${vars.a}+${vars.b}"}),
    )


async def test_parallel_children_run_concurrently_and_merge_in_order() -> None:
    a, b = barrier_pair()
    emitted: list[tuple[str, Any]] = []
    runner = FakeRunner({"a": a, "b": b, "after": returning(done=True)})
    result = await run(parallel_workflow(["a", "b"]), runner, ctx=context(emitted))

    assert result.vars == {"a": 1, "b": 2, "shared": "b", "done": True}
    assert ("after", {"got": "1+2"}) in runner.calls
    assert [(e["node"], e.get("parent")) for e in result.trace] == [
        ("a", "fan"),
        ("b", "fan"),
        ("fan", None),
        ("after", None),
    ]
    assert result.trace[2]["children"] == ["a", "b"] and result.trace[2]["next"] == "after"
    assert emitted == []


async def test_a_failing_child_fails_the_parallel_node() -> None:
    runner = FakeRunner({"a": returning(a=1), "b": failing(100), "after": returning()})
    error = await failed(parallel_workflow(["a", "b"]), runner)
    assert error.node_id == "fan" and runner.count("after") == 0 and runner.count("b") == 1
    outcomes = [(e["node"], e["outcome"]) for e in error.trace]
    assert outcomes == [("a", "ok"), ("b", "error"), ("fan", "error")]
    assert error.trace[-1]["error"] == "child 'b' failed: RuntimeError"


# --- templating ------------------------------------------------------------------------------


def test_templating_raw_values_interpolation_and_nesting() -> None:
    scope = {
        "input": {"message": "hi", "context_ids": ["c1", "c2"]},
        "vars": {"doc": {"title": "T", "n": 3}, "hits": [{"id": "h0"}]},
    }
    template = {
        "ids": "${input.context_ids}",
        "n": "${vars.doc.n}",
        "text": "Q: ${input.message} (${vars.doc.title}, ${vars.doc.n})",
        "nested": [{"m": "${ input.message }"}, 7, None, "plain"],
        "first": "${vars.hits.0.id}",
    }
    assert resolve(template, scope) == {
        "ids": ["c1", "c2"],
        "n": 3,
        "text": "Q: hi (T, 3)",
        "nested": [{"m": "hi"}, 7, None, "plain"],
        "first": "h0",
    }
    for bad in ("${vars.missing}", "x ${input.message.deeper} y", "${other.x}", "${vars..x}"):
        with pytest.raises(TemplateError):
            resolve({"k": bad}, scope)


async def test_a_missing_template_key_fails_without_retry() -> None:
    runner = FakeRunner({"t": returning()})
    error = await failed(workflow(tool_node("t", inputs={"q": "${vars.nope}"})), runner)
    assert runner.calls == [] and error.trace[0]["attempts"] == 1
    assert error.trace[0]["error"] == "missing key 'vars.nope'"


async def test_a_missing_listed_output_is_a_failure() -> None:
    runner = FakeRunner({"t": returning(other=1)})
    error = await failed(workflow(tool_node("t", outputs=["intent"], max_retries=1)), runner)
    assert runner.count("t") == 2 and "intent" in error.trace[0]["error"]


# --- switch, graph errors, step limit, trace ---------------------------------------------------


async def test_a_switch_with_no_matching_branch_fails() -> None:
    wf = workflow({"id": "s", "type": "switch", "branches": [{"when": "false", "next": "x"}]})
    error = await failed(wf, FakeRunner({}))
    assert error.node_id == "s" and error.trace[0]["error"] == "no branch matched"


async def test_an_expression_error_fails_the_switch() -> None:
    wf = workflow(
        {"id": "s", "type": "switch", "branches": [{"when": "unknown_name > 1", "next": "x"}]}
    )
    error = await failed(wf, FakeRunner({}))
    assert error.reason == "node_failed" and error.trace[0]["error"].startswith("branch 0")


async def test_switch_sees_input_and_vars() -> None:
    wf = workflow(
        {
            "id": "s",
            "type": "switch",
            "branches": [{"when": "len(input.context_ids) > 0 and vars.mode == mode", "next": "e"}],
        },
        {"id": "e", "type": "end"},
    )
    result = await run(wf, FakeRunner({}), {"context_ids": ["c"]}, vars_initial={"mode": "x"})
    assert [e["node"] for e in result.trace] == ["s", "e"] and result.trace[0]["branch"] == 0


@pytest.mark.parametrize(
    "wf",
    [
        workflow(tool_node("a", next="ghost")),
        workflow({"id": "a", "type": "teleport"}),
        workflow(
            {"id": "p", "type": "parallel", "children": ["s"]},
            {"id": "s", "type": "switch", "branches": []},
        ),
        {"kind": "workflow.chat", "entrypoint": "nowhere", "nodes": []},
    ],
)
async def test_a_broken_graph_fails_cleanly(wf: dict[str, Any]) -> None:
    error = await failed(wf, FakeRunner({"a": returning()}))
    assert error.reason == "invalid_workflow"


async def test_a_cycle_hits_the_step_limit() -> None:
    runner = FakeRunner({"loop": returning()})
    error = await failed(workflow(tool_node("loop", next="loop")), runner)
    assert error.reason == "step_limit" and len(error.trace) == MAX_STEPS


async def test_on_trace_gets_each_entry_in_order() -> None:
    seen: list[dict[str, Any]] = []

    async def on_trace(entry: dict[str, Any]) -> None:
        seen.append(entry)

    runner = FakeRunner({"a": returning(x=1), "b": returning(y=2)})
    wf = workflow(
        tool_node("a", next="b"), tool_node("b", next="end"), {"id": "end", "type": "end"}
    )
    result = await run(wf, runner, on_trace=on_trace)
    assert seen == result.trace and [e["node"] for e in seen] == ["a", "b", "end"]
    assert seen[0] == {
        "node": "a",
        "type": "tool_call",
        "tool": "a",
        "outcome": "ok",
        "attempts": 1,
        "latency_ms": seen[0]["latency_ms"],
        "outputs": ["x"],
        "next": "b",
    }
