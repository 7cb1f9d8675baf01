"""The built-in tool implementations, bound by name to the seeded `tool.spec`
artifacts. Each takes validated inputs and the turn's `ToolContext`; model calls go through
`ctx.backend` with the router's adapters and are recorded in `ctx.ledger`.

`shared.domain.tools.catalog` binds them (and `rag.answer_with_context_v1`) by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, cast

from shared.domain.llm.backend import Delta, GenerationParams, Message
from shared.domain.tools.base import ToolContext

# The system prompt SmolLM2-Instruct was tuned with; a 135M model answers far worse under
# any other (settings: CHAT_SYSTEM_PROMPT overrides it for another model).
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SUMMARY_PROMPT = (
    "Summarize the conversation below in at most five sentences. Keep names, numbers, facts, "
    "decisions and open questions; leave out greetings."
)


def chat_messages(ctx: ToolContext, user_text: str) -> list[Message]:
    system = ctx.system_prompt or DEFAULT_SYSTEM_PROMPT
    return [Message("system", system), *ctx.history, Message("user", user_text)]


def generation_params(ctx: ToolContext, **overrides: Any) -> GenerationParams:
    base = ctx.extras.get("generation")
    params = base if isinstance(base, GenerationParams) else GenerationParams()
    return dataclasses.replace(params, **overrides)


async def answer(ctx: ToolContext, messages: Sequence[Message]) -> tuple[str, str]:
    """(text, finish_reason) of the call whose text the user sees: streamed token by token to
    the client when this node may stream, recorded in the ledger either way."""
    params = generation_params(ctx)
    if not ctx.stream:
        done = await ctx.backend.complete(
            messages, params, request_id=ctx.request_id, adapters=ctx.adapters
        )
        ctx.ledger.record(
            done.usage, adapters=done.adapters, trace=done.trace,
            finish_reason=done.finish_reason, answering=True,
        )  # fmt: skip
        return done.text, done.finish_reason
    parts: list[str] = []
    deltas = ctx.backend.stream(messages, params, request_id=ctx.request_id, adapters=ctx.adapters)
    async with aclosing(cast(AsyncGenerator[Delta, None], deltas)):  # a cancel closes the stream
        async for delta in deltas:
            if delta.text:
                parts.append(delta.text)
                await ctx.emit("token", delta.text)
            if delta.finish_reason is not None:
                ctx.ledger.record(
                    delta.usage, adapters=delta.adapters, trace=delta.trace,
                    finish_reason=delta.finish_reason, answering=True,
                )  # fmt: skip
    return "".join(parts), ctx.ledger.finish_reason or "stop"


async def generic_chat(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """The answer to the user's message from the base model and the routed adapters."""
    text, finish_reason = await answer(ctx, chat_messages(ctx, str(inputs["message"])))
    return {"answer": text, "finish_reason": finish_reason}


def transcript(messages: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


SUMMARY_MAX_TOKENS = 160


def summary_prompt(messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """What `memory.summarize_v1` sends the model (working memory counts it before calling)."""
    return [Message("system", SUMMARY_PROMPT), Message("user", transcript(messages))]


async def summarize(inputs: Mapping[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """A rolling summary of older turns (working memory), written by the base model alone:
    a user's adapters shape answers, not the bookkeeping."""
    prompt = summary_prompt(inputs["messages"])
    max_tokens = int(inputs.get("max_tokens", SUMMARY_MAX_TOKENS))
    params = generation_params(ctx, temperature=0.0, max_tokens=max_tokens)
    done = await ctx.backend.complete(prompt, params, request_id=f"{ctx.request_id}:summary")
    ctx.ledger.record(done.usage)
    return {"summary": done.text.strip()}
