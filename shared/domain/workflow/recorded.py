"""What a turn's trace keeps of its workflow run so the run's routing decisions (which switch
branch, which node next) can be replayed with no tool or model call (ConfigOps' dry-run), and
the replay itself.

Kept per tool node: its tool and a digest of what it returned. Short scalars (an intent
label, a flag, a count) are kept as they are, since those are what `switch` conditions read;
long text and structures (the answer, citations) become `$elided` markers, so the trace never
holds the answer twice. A replayed condition that reads a marker is reported undetermined,
never guessed.

`replay_path` mirrors `engine.run_workflow`'s control flow (entrypoint, `next`, switch, parallel,
`on_error`, `outputs` selection, `MAX_STEPS`); a change there must be made here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.expressions.expr import ExpressionError, compile_expression
from shared.domain.routing.recorded import elided, is_elided
from shared.domain.tools.base import ToolContext, ToolRunner
from shared.domain.workflow.engine import MAX_STEPS

MAX_KEPT_CHARS = 32
MAX_KEPT_ITEMS = 16


def digest(value: Any) -> Any:
    """What of one output value a replay may read: short scalars as they are, else a marker."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):  # NaN and infinities are not JSON Postgres takes
        return value if math.isfinite(value) else elided(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_KEPT_CHARS else elided(value)
    if isinstance(value, list | tuple) and len(value) <= MAX_KEPT_ITEMS:
        items = [digest(item) for item in value]
        if not any(is_elided(item) or isinstance(item, list) for item in items):
            return items
    return elided(value)


class RecordingRunner:
    """A `ToolRunner` that notes each workflow node's last result, digested, by node id."""

    def __init__(self, runner: ToolRunner):
        self.runner = runner
        self.outcomes: dict[str, dict[str, Any]] = {}

    async def run(self, name: str, inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        node = ctx.extras.get("workflow_node")
        try:
            result = await self.runner.run(name, inputs, ctx)
        except Exception:
            if isinstance(node, str):
                self.outcomes[node] = {"tool": name, "ok": False}
            raise
        if isinstance(node, str):
            out = {k: digest(v) for k, v in result.items()} if isinstance(result, Mapping) else {}
            self.outcomes[node] = {"tool": name, "ok": True, "out": out}
        return result


# --- replay ---------------------------------------------------------------------------------


class Undetermined(Exception):
    """The replay needs something the trace does not hold (a value it elided, a tool the
    recorded turn never ran)."""


class _Env(Mapping[str, Any]):
    """Expression scope over recorded values: reading an elided one raises `Undetermined`
    (not an `ExpressionError`, which the evaluator would treat as a false branch)."""

    def __init__(self, data: Mapping[str, Any], path: str = ""):
        self._data, self._path = data, path

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if is_elided(value):
            raise Undetermined(f"reads {self._path}{key}, which the trace does not keep")
        return _Env(value, f"{self._path}{key}.") if isinstance(value, Mapping) else value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class ReplayedPath:
    nodes: list[str] = field(default_factory=list)
    branches: dict[str, int] = field(default_factory=dict)  # switch node -> branch taken
    end: str = "ok"  # ok | fallback | failed | undetermined
    reason: str | None = None


def _outcome(
    node: Mapping[str, Any], outcomes: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any]:
    """The recorded result for this node: by node id when the tool is the same, else the
    one node of the recorded run that called this tool."""
    tool = node.get("tool")
    own = outcomes.get(node["id"])
    if own is not None and own.get("tool") == tool:
        return own
    same = [o for o in outcomes.values() if o.get("tool") == tool]
    if len(same) != 1:
        raise Undetermined(f"node {node['id']!r}: the recorded turn did not run {tool!r} once")
    return same[0]


def _tool(node: Mapping[str, Any], outcomes: Mapping[str, Mapping[str, Any]]) -> dict | None:
    """The node's selected outputs, or None when it failed (missing `outputs` keys included)."""
    recorded = _outcome(node, outcomes)
    if not recorded.get("ok"):
        return None
    out = recorded.get("out") or {}
    wanted = node.get("outputs")
    if not wanted:
        return dict(out)
    if any(key not in out for key in wanted):
        return None
    return {key: out[key] for key in wanted}


def _parallel(
    node: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, Mapping[str, Any]],
) -> dict | None:
    """The children's outputs merged in order, or None when one failed (as the engine)."""
    merged: dict[str, Any] = {}
    for child in node.get("children") or []:
        out = _tool(nodes[child], outcomes)
        if out is None:
            return None
        merged.update(out)
    return merged


def _switch(node: Mapping[str, Any], env: Mapping[str, Any]) -> tuple[int, str] | None:
    for index, branch in enumerate(node.get("branches") or []):
        if not isinstance(branch, Mapping) or not isinstance(branch.get("next"), str):
            raise ValueError(f"switch node {node['id']!r}: branch {index} is malformed")
        try:
            if compile_expression(branch.get("when", "")).truthy(env):
                return index, branch["next"]
        except ExpressionError:
            return None
    return None


def replay_path(
    workflow: Mapping[str, Any],
    *,
    inputs: Mapping[str, Any],
    outcomes: Mapping[str, Mapping[str, Any]],
) -> ReplayedPath:
    """The nodes `workflow` would take for a turn with these `inputs` whose tools returned
    `outcomes` (RecordingRunner's). Never raises: a broken graph ends `failed`."""
    path = ReplayedPath()
    variables: dict[str, Any] = {}
    nodes: dict[str, Mapping[str, Any]] = {
        n["id"]: n
        for n in workflow.get("nodes") or []
        if isinstance(n, Mapping) and isinstance(n.get("id"), str)
    }
    node_id = workflow.get("entrypoint")
    try:
        while node_id is not None:
            if node_id not in nodes or len(path.nodes) >= MAX_STEPS:
                raise ValueError("step limit" if node_id in nodes else f"unknown node {node_id!r}")
            node = nodes[node_id]
            path.nodes.append(node_id)
            kind, following = node.get("type"), node.get("next")
            if kind == "tool_call":
                out = _tool(node, outcomes)
            elif kind == "parallel":
                out = _parallel(node, nodes, outcomes)
            elif kind == "switch":
                env = _Env({**variables, "input": inputs, "vars": variables})
                taken = _switch(node, env)
                out = None if taken is None else {}
                if taken is not None:
                    path.branches[node_id], following = taken
            elif kind == "end":
                out, following = {}, None
            else:
                raise ValueError(f"node {node_id!r} has unknown type {kind!r}")
            if out is not None:
                variables.update(out)
                node_id = following
                continue
            fallback = node.get("on_error")
            if not isinstance(fallback, str) or not fallback:
                path.end, path.reason = "failed", f"node {node_id!r} fails"
                return path
            variables["error"] = elided("error")
            path.end, node_id = "fallback", fallback
    except Undetermined as exc:
        path.end, path.reason = "undetermined", str(exc)
    except (ValueError, KeyError, TypeError) as exc:
        path.end, path.reason = "failed", f"broken graph: {exc}"
    return path
