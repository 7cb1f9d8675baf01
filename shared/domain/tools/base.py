"""What a tool is to the workflow engine: a Python implementation bound by name to a
`tool.spec` artifact, called with a validated input mapping and a `ToolContext`, returning an
output mapping that is validated against the spec's `output_schema`.

The context carries everything a tool may touch for the current chat turn, so tools hold no
state of their own and stay testable with small fakes: the LLM backend with the router's
adapters, the working memory, and `emit` to stream events (tokens) to the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.domain.llm.backend import AdapterUse, AppliedAdapter, LLMBackend, Message, Usage

# (event name, payload): "token" with a str; tools never emit "message_done" themselves.
Emit = Callable[[str, Any], Awaitable[None]]


async def _discard(event: str, data: Any) -> None:
    return None


@dataclass(frozen=True)
class ToolSpec:
    """The parts of a `tool.spec` artifact the registry enforces."""

    name: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    description: str = ""
    timeout_ms: int | None = None
    max_retries: int | None = None
    privileged: bool = False


@dataclass
class LlmLedger:
    """What the model calls of one chat turn added up to: tokens, the adapters that really
    shaped an answer (as the backend reported them), and the backend's adapter trace. Tools
    record into it, so `message_done` reports usage even when a workflow node keeps only
    `answer` in its outputs."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    adapters: list[AppliedAdapter] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None

    def record(
        self,
        usage: Usage | None,
        *,
        adapters: Sequence[AppliedAdapter] = (),
        trace: Sequence[dict[str, Any]] = (),
        finish_reason: str | None = None,
        answering: bool = False,
    ) -> None:
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
        if answering:  # the call whose text the user sees decides these
            self.adapters = list(adapters)
            self.trace.extend(trace)
            self.finish_reason = finish_reason


@dataclass(frozen=True)
class ToolContext:
    user_id: str
    request_id: str
    backend: LLMBackend
    adapters: Sequence[AdapterUse] = ()
    # The working memory of the conversation (summary + recent turns), oldest first, without
    # the current user message.
    history: Sequence[Message] = ()
    system_prompt: str | None = None
    emit: Emit = _discard
    # Whether tokens of this call should reach the client (the node producing the answer).
    stream: bool = True
    ledger: LlmLedger = field(default_factory=LlmLedger)
    extras: Mapping[str, Any] = field(default_factory=dict)


class Tool(Protocol):
    async def __call__(self, inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]: ...


class ToolRunner(Protocol):
    """Runs a tool by name: finds its spec and implementation, validates input and output,
    and keeps its circuit breaker (shared.domain.tools.registry). Retries and timeouts are the
    caller's (the workflow engine's node policy)."""

    async def run(
        self, name: str, inputs: Mapping[str, Any], ctx: ToolContext
    ) -> dict[str, Any]: ...
