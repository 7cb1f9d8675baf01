"""The tools registry: Python implementations bound by name to `tool.spec`
artifacts. A call finds the spec the user may use (their own first, then shared, then global),
validates the input against its `input_schema`, refuses while the tool's circuit breaker is
open, runs the implementation and validates the output against `output_schema`.

Specs are data (ConfigOps may change a schema); implementations are code, named in
`shared.domain.tools.catalog.BUILTINS`. A spec without an implementation cannot be called.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from psycopg.rows import dict_row

from shared.domain.artifacts.kinds import problem
from shared.domain.tools.base import Tool, ToolContext, ToolSpec
from shared.domain.tools.breaker import ToolBreaker
from shared.platform.db.pool import Pool
from shared.platform.errors import AppError, NotFound, ServerError, ValidationError

MAX_SCHEMA_ERRORS = 10

_SPEC = """
SELECT schema FROM artifact
 WHERE type = 'tool.spec' AND schema->>'name' = %(name)s
   AND (owner_user_id = %(user)s::uuid OR visibility IN ('shared', 'global'))
 ORDER BY (owner_user_id = %(user)s::uuid) DESC NULLS LAST,
          (visibility = 'shared') DESC, updated_at DESC
 LIMIT 1
"""


def schema_problems(schema: Mapping[str, Any], value: Any) -> list[dict[str, str]]:
    """JSON-pointer paths and messages of what `value` breaks in `schema` (at most 10), in
    the artifacts' problem format."""
    errors = islice(Draft202012Validator(schema).iter_errors(value), MAX_SCHEMA_ERRORS)
    return [problem(error.absolute_path, error.message) for error in errors]


def spec_from_schema(schema: Mapping[str, Any]) -> ToolSpec:
    return ToolSpec(
        name=str(schema["name"]),
        description=str(schema.get("description", "")),
        input_schema=schema.get("input_schema") or {"type": "object"},
        output_schema=schema.get("output_schema") or {"type": "object"},
        timeout_ms=schema.get("timeout_ms"),
        max_retries=schema.get("max_retries"),
        privileged=bool(schema.get("privileged", False)),
    )


class ToolRegistry:
    """A `ToolRunner` over the database's specs and the given implementations."""

    def __init__(
        self,
        *,
        pool: Pool,
        breaker: ToolBreaker,
        implementations: Mapping[str, Tool],
    ):
        self.pool, self.breaker, self.implementations = pool, breaker, implementations

    async def spec(self, name: str, user_id: str) -> ToolSpec:
        async with self.pool.connection() as conn:
            cursor = await conn.cursor(row_factory=dict_row).execute(
                _SPEC, {"name": name, "user": user_id}
            )
            row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no tool named {name!r}")
        return spec_from_schema(row["schema"])

    async def run(self, name: str, inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
        spec = await self.spec(name, ctx.user_id)
        implementation = self.implementations.get(name)
        if implementation is None:
            raise NotFound(f"tool {name!r} has a spec but no implementation in this deployment")
        if spec.privileged:
            # No privileged tool ships; one added later runs only from admin-owned artifacts.
            raise ValidationError(f"tool {name!r} is privileged and cannot run in a chat")
        try:
            problems = schema_problems(spec.input_schema, dict(inputs))
        except SchemaError as exc:
            raise ServerError(f"tool {name!r} has an invalid input_schema") from exc
        if problems:
            raise ValidationError(f"input to tool {name!r} is invalid", details=problems)
        await self.breaker.check(name)
        try:
            output = await implementation(inputs, ctx)
        except AppError as exc:
            # The caller's input (an invalid value, another user's clip: any 4xx), or
            # back-pressure (the model's queue is full, 429): neither says the tool is broken,
            # and opening its breaker for everyone would turn a busy moment into a 30 s outage.
            if exc.status >= 500:
                await self.breaker.failure(name)
            raise
        except Exception:
            await self.breaker.failure(name)
            raise
        problems = schema_problems(spec.output_schema, output)
        if problems:
            await self.breaker.failure(name)
            raise ToolOutputInvalid(f"tool {name!r} returned invalid output", details=problems)
        await self.breaker.success(name)
        return output


class ToolOutputInvalid(AppError):
    code, status = "server_error", 500
