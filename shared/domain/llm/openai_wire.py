"""The OpenAI chat-completions shapes both backends speak: messages out, blocking answers,
SSE streams and embedding lists back."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any

import httpx

from shared.domain.llm.backend import AppliedAdapter, Completion, Delta, Message, Usage
from shared.platform.errors import Unavailable

# Reads what was applied from the answer (the blocking body, or the stream's finishing chunk).
AppliedReader = Callable[[dict[str, Any]], tuple[AppliedAdapter, ...]]


def message_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _usage(data: dict[str, Any]) -> Usage | None:
    usage = data.get("usage")
    if not usage:
        return None
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def completion_from(
    data: dict[str, Any],
    *,
    request_id: str,
    applied: AppliedReader,
    trace: tuple[dict[str, Any], ...],
) -> Completion:
    choice = data["choices"][0]
    return Completion(
        text=choice["message"].get("content") or "",
        finish_reason=choice.get("finish_reason") or "stop",
        usage=_usage(data) or Usage(),
        truncated=bool(data.get("truncated")),
        request_id=request_id,
        adapters=applied(data),
        trace=trace,
    )


async def _sse_chunks(response: httpx.Response, service: str) -> AsyncIterator[dict[str, Any]]:
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, `event:` and `:` keep-alive comments
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            chunk = json.loads(payload)
            if "error" in chunk:
                error = chunk["error"]
                message = error.get("message") if isinstance(error, dict) else error
                raise Unavailable(f"{service} failed mid-stream: {message}")
            yield chunk
    except httpx.TransportError as exc:
        raise Unavailable(f"{service} stream broke: {exc!r}") from exc


async def read_deltas(
    response: httpx.Response,
    *,
    service: str,
    applied: AppliedReader,
    trace: tuple[dict[str, Any], ...],
) -> AsyncGenerator[Delta, None]:
    """Text deltas as they come, then one final delta with the finish reason and usage.

    OpenAI sends usage in a chunk of its own after the finishing one, so the final delta is
    only built once the stream has ended. A stream that ends without a finish reason was cut
    off and raises `Unavailable`.
    """
    finish_reason: str | None = None
    finishing: dict[str, Any] = {}
    usage: Usage | None = None
    try:
        async for chunk in _sse_chunks(response, service):
            usage = _usage(chunk) or usage
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    yield Delta(text=text)
                if choice.get("finish_reason"):
                    finish_reason, finishing = choice["finish_reason"], chunk
    finally:
        await response.aclose()
    if finish_reason is None:
        raise Unavailable(f"{service} stream ended without a finish reason")
    yield Delta(
        text="",
        finish_reason=finish_reason,
        usage=usage or Usage(),
        adapters=applied(finishing),
        trace=trace,
    )


def embeddings_from(data: dict[str, Any]) -> list[list[float]]:
    return [item["embedding"] for item in sorted(data["data"], key=lambda d: d["index"])]
