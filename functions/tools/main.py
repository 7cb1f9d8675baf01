"""Tools function: `POST /v1/tools/run { tool_id, input }` runs one tool outside a workflow,
for testing a tool spec, with the registry's schema checks and circuit breaker and
a workflow node's retry and timeout caps. `Idempotency-Key` replays a finished run for 24 h.

The run holds one of the user's workflow slots (a tool run is a workflow of one node) and
spends the `chat` rate budget: the built-in tools call the model.
"""

from __future__ import annotations

import uuid
from typing import Any

from functions.tools.schemas import ToolRunIn, ToolRunOut
from shared.domain.artifacts import store
from shared.domain.tools.base import LlmLedger, ToolContext
from shared.domain.workflow.single_tool import run_tool
from shared.platform.auth.perimeter import perimeter
from shared.platform.context import current_request_id
from shared.platform.db.pool import Pool
from shared.platform.errors import NotFound
from shared.platform.idempotency import IdempotencyStore
from shared.platform.limits.caps import ConcurrencyCaps, caps
from shared.platform.runtime.routes import Access, Call, Route, RouteTable
from shared.services import Services


async def _tool_name(pool: Pool, user_id: str, tool_id: str) -> str:
    """A tool.spec artifact id names its tool; anything else is taken as the name itself."""
    try:
        artifact_id = str(uuid.UUID(tool_id))
    except ValueError:
        return tool_id
    async with pool.connection() as conn:  # 404 unless the user may read it
        artifact = await store.get(conn, user_id, artifact_id)
    if artifact.type != "tool.spec":
        raise NotFound(f"artifact {artifact_id} is not a tool.spec")
    return str(artifact.schema["name"])


async def run(call: Call[ToolRunIn], *, services: Services) -> ToolRunOut:
    body = call.body
    user_id, pool = call.user.user_id, services.db

    async def execute() -> dict[str, Any]:
        name = await _tool_name(pool, user_id, body.tool_id)
        ctx = ToolContext(
            user_id=user_id, request_id=current_request_id() or "", backend=services.llm,
            system_prompt=services.settings.chat_system_prompt, stream=False, ledger=LlmLedger(),
            extras={"generation": services.generation, **services.rag_extras()},
        )  # fmt: skip
        limits = ConcurrencyCaps(services.redis, caps(services.settings))
        async with limits.hold("workflows", user_id):
            done = await run_tool(
                services.tools, name, body.input, ctx,
                timeout_ms=body.timeout_ms, max_retries=body.max_retries,
            )  # fmt: skip
        return ToolRunOut.model_validate(done, from_attributes=True).model_dump(mode="json")

    answer = await IdempotencyStore(services.redis).once(
        user_id, "tools.run", call.request.headers.get("idempotency-key"),
        body.model_dump(mode="json"), execute,
    )  # fmt: skip
    return ToolRunOut.model_validate(answer)


ROUTES = RouteTable(
    "tools",
    [
        Route("POST", "/v1/tools/run", run,
              "Run one tool outside a workflow, with a workflow node's retry and timeout caps",
              access=Access.USER, request_model=ToolRunIn, response_model=ToolRunOut,
              rate_limit="chat"),
    ],
    **perimeter(),
)  # fmt: skip
