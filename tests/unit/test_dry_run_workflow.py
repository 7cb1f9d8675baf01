"""The workflow side of the dry-run (ConfigOps, issue 20): tool results recorded by
`RecordingRunner` while the real engine runs, and `replay_path` deciding the same path from them
with no tool call. Pure, no I/O (a fake ToolRunner)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from shared.domain.configops.dry_run_sample import PastTurn
from shared.domain.configops.dry_run_workflow import NO_INPUTS, replay_workflow_turns
from shared.domain.tools.base import ToolContext
from shared.domain.workflow.engine import WorkflowFailed, run_workflow
from shared.domain.workflow.recorded import RecordingRunner, digest, replay_path
from tests.unit.test_workflow_engine import FakeRunner, context, failing, returning

ANSWER = "A long answer that the trace must not keep a second time."


def classify(inputs: Mapping[str, Any], ctx: ToolContext) -> Any:
    async def impl(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return {"intent": "code" if "Python" in inputs["message"] else "chitchat", "score": 0.9}

    return impl(inputs, ctx)


TOOLS = {
    "classify": classify,
    "chat": returning(answer=ANSWER),
    "rag": returning(answer=ANSWER, citations=[{"chunk": "c1"}]),
    "code": returning(answer=ANSWER),
    "broken": failing(99),
}


def tool(node_id: str, tool_name: str, nxt: str | None = "end", **fields: Any) -> dict[str, Any]:
    node = {"id": node_id, "type": "tool_call", "tool": tool_name, "max_retries": 0, **fields}
    node["inputs"] = {"message": "${input.message}"}
    return {**node, "next": nxt} if nxt else node


def switch(node_id: str, *branches: tuple[str, str]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "switch",
        "branches": [{"when": w, "next": n} for w, n in branches],
    }


END = {"id": "end", "type": "end"}
BY_CONTEXT = {
    "kind": "workflow.chat",
    "entrypoint": "route",
    "nodes": [
        switch("route", ("len(input.context_ids) > 0", "rag"), ("true", "plain")),
        tool("rag", "rag"),
        tool("plain", "chat"),
        END,
    ],
}
BY_INTENT = {
    "kind": "workflow.chat",
    "entrypoint": "classify",
    "nodes": [
        tool("classify", "classify", "route", outputs=["intent"]),
        switch("route", ("intent == 'code'", "coder"), ("true", "plain")),
        tool("coder", "code"),
        tool("plain", "chat"),
        END,
    ],
}


async def recorded_run(workflow: dict, message: str, context_ids=()) -> tuple[list[str], dict]:
    """The engine's top-level path and the outcomes chat would store, through JSON."""
    runner = RecordingRunner(FakeRunner(TOOLS))
    inputs = {"message": message, "context_ids": list(context_ids)}
    try:
        result = await run_workflow(workflow, inputs=inputs, runner=runner, ctx=context())
        trace = result.trace
    except WorkflowFailed as exc:
        trace = exc.trace
    path = [e["node"] for e in trace if "parent" not in e]
    return path, json.loads(json.dumps(runner.outcomes))


@pytest.mark.parametrize("workflow", [BY_CONTEXT, BY_INTENT])
@pytest.mark.parametrize(
    ("message", "context_ids"), [("Hi", ()), ("Reverse a list in Python", ()), ("Hi", ("ctx-1",))]
)
async def test_the_replayed_path_is_the_engines(workflow, message, context_ids) -> None:
    path, outcomes = await recorded_run(workflow, message, context_ids)
    inputs = {"message": message, "context_ids": list(context_ids)}
    replayed = replay_path(workflow, inputs=inputs, outcomes=outcomes)
    assert replayed.nodes == path and replayed.end == "ok"


async def test_the_trace_keeps_labels_not_answers() -> None:
    _, outcomes = await recorded_run(BY_INTENT, "Python please")
    assert outcomes["classify"] == {
        "tool": "classify",
        "ok": True,
        "out": {"intent": "code", "score": 0.9},
    }
    assert outcomes["coder"]["out"]["answer"] == {"$elided": "str"}
    assert ANSWER not in json.dumps(outcomes)
    assert digest(float("nan")) == {"$elided": "float"} and digest([1, "a"]) == [1, "a"]


async def test_a_failed_tool_takes_on_error_in_the_replay_as_live() -> None:
    flaky = {
        "kind": "workflow.chat",
        "entrypoint": "try",
        "nodes": [tool("try", "broken", on_error="plain"), tool("plain", "chat"), END],
    }
    path, outcomes = await recorded_run(flaky, "Hi")
    replayed = replay_path(flaky, inputs={"message": "Hi"}, outcomes=outcomes)
    assert replayed.nodes == path == ["try", "plain", "end"] and replayed.end == "fallback"
    no_fallback = {**flaky, "nodes": [tool("try", "broken"), tool("plain", "chat"), END]}
    assert replay_path(no_fallback, inputs={"message": "Hi"}, outcomes=outcomes).end == "failed"


async def test_what_the_trace_does_not_hold_is_undetermined() -> None:
    _, outcomes = await recorded_run(BY_CONTEXT, "Hi")
    reads_answer = {
        **BY_CONTEXT,
        "nodes": [
            tool("plain", "chat", "check"),
            switch("check", ("len(vars.answer) > 10", "end")),
            END,
        ],
        "entrypoint": "plain",
    }
    replayed = replay_path(reads_answer, inputs={"message": "Hi"}, outcomes=outcomes)
    assert replayed.end == "undetermined" and "vars.answer" in (replayed.reason or "")
    # BY_INTENT calls a classifier the recorded turn never ran.
    replayed = replay_path(BY_INTENT, inputs={"message": "Hi"}, outcomes=outcomes)
    assert replayed.end == "undetermined" and replayed.nodes == ["classify"]


async def test_the_summary_counts_the_turns_whose_path_changes() -> None:
    turns = []
    for i, message in enumerate(["Hi", "Python lists?", "Hi", "Python dicts?"]):
        path, outcomes = await recorded_run(BY_INTENT, message)
        inputs = {
            "workflow": {"id": "w", "version": 1, "input": {"context_ids": []}, "tools": outcomes}
        }
        nodes = [{"node": n} for n in path]
        turns.append(PastTurn(f"m{i}", message, inputs, [], nodes))
    turns.append(PastTurn("old", "Hi", None, [], []))
    # The patch sends code questions to the plain chat node as well.
    after = {
        **BY_INTENT,
        "nodes": [
            *BY_INTENT["nodes"][:1],
            switch("route", ("true", "plain")),
            *BY_INTENT["nodes"][2:],
        ],
    }
    out = replay_workflow_turns(turns, BY_INTENT, after)
    assert out["replayed"] == 4 and out["reproduced"] == 4
    assert out["skipped"] == {"total": 1, "reasons": {NO_INPUTS: 1}}
    assert out["changed"] == 2 and out["undetermined"] == 0 and out["unchanged"] == 2
    assert [e["message_id"] for e in out["examples"]] == ["m1", "m3"]
    assert out["examples"][0]["before"]["nodes"] == ["classify", "route", "coder", "end"]
    # The code turns never ran the plain tool: where the path goes is known, not past it.
    after_path = out["examples"][0]["after"]
    assert after_path["nodes"] == ["classify", "route", "plain"]
    assert after_path["end"] == "undetermined" and "'chat'" in after_path["reason"]
    assert out["nodes"]["coder"] == {"before": 2, "after": 0}
    assert out["nodes"]["plain"] == {"before": 2, "after": 4}
    json.dumps(out)
