"""Request and answer shapes of `POST /v1/tools/run`."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.workflow.policy import MAX_NODE_TIMEOUT_S, MAX_RETRIES_CAP

# A tool's name (`llm.generic_chat_v1`) or the id of its `tool.spec` artifact.
_TOOL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class ToolRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool_id: str = Field(description="a tool name, or the id of a tool.spec artifact")
    input: dict[str, Any] = Field(default_factory=dict)
    # Narrower than the tool spec's own settings if given; capped like any workflow node.
    timeout_ms: int | None = Field(default=None, ge=1, le=int(MAX_NODE_TIMEOUT_S * 1000))
    max_retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES_CAP)

    @field_validator("tool_id")
    @classmethod
    def _tool_id(cls, value: str) -> str:
        if not _TOOL_ID.match(value):
            raise ValueError("tool_id must be a tool name or a tool.spec artifact id")
        return value


class ToolRunOut(BaseModel):
    tool: str
    output: dict[str, Any]
    attempts: int
    latency_ms: float
    usage: dict[str, int]
