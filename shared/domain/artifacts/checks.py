"""What a JSON Schema cannot say about an artifact: graph references, other artifacts it names,
expressions that must compile, JSON Schemas that must be valid JSON Schemas.

`check` runs after `kinds.validate` (the schema has the right shape) and raises one
`ValidationError` whose details are `{"path", "message"}` problems, like the schema errors.
References are resolved as the acting user sees them; an artifact others can see (shared or
global) may only name artifacts that others can see too, or it would break for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from shared.domain.artifacts.kinds import Problem, fail, problem
from shared.domain.expressions.expr import ExpressionError, compile_expression

# Actions that name one adapter by id ("current" means the adapter being evaluated).
_ADAPTER_ID_ACTIONS = frozenset({"activate_adapter_by_id", "deactivate_adapter",
                                 "scale_adapter_weight"})  # fmt: skip


async def check(
    conn: psycopg.AsyncConnection, user_id: str | None, schema: dict[str, Any], *,
    visibility: str = "private",
) -> None:  # fmt: skip
    """Raises ValidationError listing every problem; `user_id` None checks as the system
    (global references only)."""
    kind = schema["kind"]
    scope = {"user": user_id, "private": visibility == "private" and user_id is not None}
    problems: list[Problem] = []
    if kind == "workflow.chat":
        problems = await _workflow(conn, scope, schema)
    elif kind == "policy.routing":
        problems = await _policy(conn, scope, schema)
    elif kind == "tool.spec":
        problems = tool_schema_problems(schema)
    elif kind == "context.knowledge":
        if schema.get("chunk_overlap", 0) >= schema.get("chunk_tokens", 400):
            problems = [problem(("chunk_overlap",), "must be smaller than chunk_tokens")]
    elif kind == "memory.summary":
        problems = await _memory(conn, user_id, schema)
    if problems:
        raise fail("the artifact does not check out", problems)


def expression_problem(parts: Iterable[Any], source: str) -> Problem | None:
    try:
        compile_expression(source)
    except ExpressionError as exc:
        return problem(parts, f"expression does not compile: {exc}")
    return None


def tool_schema_problems(schema: dict[str, Any]) -> list[Problem]:
    found = []
    for field in ("input_schema", "output_schema"):
        if field not in schema:
            continue
        try:
            Draft202012Validator.check_schema(schema[field])
        except SchemaError as exc:
            found.append(problem((field, *exc.absolute_path), f"not a valid JSON Schema: "
                                 f"{exc.message}"))  # fmt: skip
    return found


async def _workflow(
    conn: psycopg.AsyncConnection, scope: dict[str, Any], schema: dict[str, Any]
) -> list[Problem]:
    nodes = schema["nodes"]
    found: list[Problem] = []
    ids: set[str] = set()
    for i, node in enumerate(nodes):
        if node["id"] in ids:
            found.append(problem(("nodes", i, "id"), f"duplicate node id {node['id']!r}"))
        ids.add(node["id"])

    def target(parts: tuple[Any, ...], name: str) -> None:
        if name not in ids:
            found.append(problem(parts, f"names no node of this workflow: {name!r}"))

    target(("entrypoint",), schema["entrypoint"])
    types = {node["id"]: node["type"] for node in nodes}
    tools: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for field in ("next", "on_error"):
            if field in node:
                target(("nodes", i, field), node[field])
        for j, child in enumerate(node.get("children", ())):
            target(("nodes", i, "children", j), child)
            if child in types and types[child] != "tool_call":  # what the engine fans out
                found.append(problem(("nodes", i, "children", j),
                                     f"child {child!r} is not a tool_call node"))  # fmt: skip
        for j, branch in enumerate(node.get("branches", ())):
            target(("nodes", i, "branches", j, "next"), branch["next"])
            bad = expression_problem(("nodes", i, "branches", j, "when"), branch["when"])
            if bad:
                found.append(bad)
        if "tool" in node:
            tools.setdefault(node["tool"], []).append(i)
    if tools:
        cursor = await conn.execute(
            "SELECT a.name, a.schema->>'name' FROM artifact a WHERE a.type = 'tool.spec'"
            " AND (a.name = ANY(%(names)s) OR a.schema->>'name' = ANY(%(names)s))"
            " AND (a.visibility IN ('shared', 'global')"
            " OR (%(private)s AND a.owner_user_id = %(user)s::uuid))",
            {**scope, "names": list(tools)},
        )
        known = {name for row in await cursor.fetchall() for name in row if name}
        for name, where in tools.items():
            message = f"no tool.spec named {name!r} is visible here"
            found += [problem(("nodes", i, "tool"), message) for i in where if name not in known]
    return found


async def _policy(
    conn: psycopg.AsyncConnection, scope: dict[str, Any], schema: dict[str, Any]
) -> list[Problem]:
    found: list[Problem] = []
    ids: set[str] = set()
    adapters: dict[str, list[int]] = {}
    for i, rule in enumerate(schema["rules"]):
        if rule["id"] in ids:
            found.append(problem(("rules", i, "id"), f"duplicate rule id {rule['id']!r}"))
        ids.add(rule["id"])
        bad = expression_problem(("rules", i, "when"), rule["when"])
        if bad:
            found.append(bad)
        action = rule["action"]
        adapter_id = action.get("adapter_id")
        if action["type"] in _ADAPTER_ID_ACTIONS and adapter_id and adapter_id != "current":
            adapters.setdefault(adapter_id.lower(), []).append(i)
    if adapters:
        cursor = await conn.execute(
            "SELECT a.id::text FROM artifact a WHERE a.type = 'adapter.lora'"
            " AND a.id = ANY(%(ids)s::uuid[]) AND (a.visibility IN ('shared', 'global')"
            " OR (%(private)s AND a.owner_user_id = %(user)s::uuid))",
            {**scope, "ids": list(adapters)},
        )
        known = {row[0] for row in await cursor.fetchall()}
        for adapter_id, where in adapters.items():
            message = f"no adapter.lora {adapter_id} is visible here"
            found += [
                problem(("rules", i, "action", "adapter_id"), message)
                for i in where
                if adapter_id not in known
            ]
    return found


async def _memory(
    conn: psycopg.AsyncConnection, user_id: str | None, schema: dict[str, Any]
) -> list[Problem]:
    cursor = await conn.execute(
        "SELECT 1 FROM conversation WHERE id = %s AND user_id = %s",
        (schema["conversation_id"], user_id),
    )
    if await cursor.fetchone() is None:
        return [problem(("conversation_id",), "names no conversation of yours")]
    return []
