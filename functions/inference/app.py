"""The OpenAI-compatible HTTP surface over the runtime. Knows nothing of tensors."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pydantic
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from functions.inference.errors import Refused, adapter_refusals, error
from functions.inference.runtime import Runtime
from functions.inference.schemas import (
    BASE_MODEL_ID,
    EMBEDDING_MODEL_ID,
    CancelRequest,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    LoadAdapterRequest,
    TokenizeRequest,
)
from shared.neural.copying import source_ids, word_start_mask
from shared.neural.engine import DoneEvent, EngineBusy, TokenEvent
from shared.neural.sampling import SamplingParams
from shared.neural.tokenizer import ChatMessage
from shared.platform.tracing import ContinueTrace

FINISH = {
    "stop": "stop",
    "length": "length",
    "timeout": "length",
    "cancelled": "cancelled",
    "error": "error",
}


class Metrics:
    def __init__(self, runtime: Runtime):
        self.registry = runtime.registry
        r = self.registry
        Gauge("inference_queue_depth", "Requests waiting for a slot", registry=r).set_function(
            lambda: runtime.engine.queue_depth if runtime.engine else 0
        )
        Gauge("inference_active_slots", "Decode slots in use", registry=r).set_function(
            lambda: runtime.engine.active_slots if runtime.engine else 0
        )
        self.ttft = Histogram(
            "inference_time_to_first_token_seconds",
            "Submit to first token",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
        )
        self.itl = Histogram(
            "inference_inter_token_latency_seconds",
            "Between streamed tokens",
            registry=r,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1),
        )
        self.tokens_in = Counter("inference_tokens_in", "Prompt tokens", registry=r)
        self.tokens_out = Counter("inference_tokens_out", "Generated tokens", registry=r)
        self.requests = Counter(
            "inference_requests",
            "Requests by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=r,
        )


async def _parse(request: Request, model: type[pydantic.BaseModel]) -> Any:
    try:
        return model.model_validate(json.loads(await request.body() or b"{}"))
    except (json.JSONDecodeError, pydantic.ValidationError) as exc:
        raise _BadRequest(str(exc)) from exc


class _BadRequest(Exception):
    pass


def create_app(runtime: Runtime) -> Starlette:
    metrics = Metrics(runtime)
    token = runtime.settings.inference_token.get_secret_value()

    word_starts: list[np.ndarray] = []  # which token ids begin a word: built at first use

    def copy_ids(texts: list[str]) -> tuple[int, ...]:
        """`copy_from` texts as the copy processor reads them (shared.neural.copying)."""
        tok = runtime.tokenizer
        assert tok is not None
        if not word_starts:
            word_starts.append(word_start_mask(tok.decode, tok.vocab_size))
        return source_ids(texts, tok.encode, word_starts[0])

    def params_of(body: Any, copy_from: tuple[int, ...] = ()) -> SamplingParams:
        return SamplingParams(
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            max_tokens=body.token_budget(),
            stop=body.stops(),
            seed=body.seed,
            max_decode_ms=body.max_decode_ms,
            logit_bias=body.biases(),
            copy_from=copy_from,
        )

    async def complete(request: Request, kind: str) -> Response:
        endpoint = "chat" if kind == "chat" else "completions"
        model_cls = ChatCompletionRequest if kind == "chat" else CompletionRequest
        body = await _parse(request, model_cls)
        if body.model != BASE_MODEL_ID and not body.model_is_adapter:
            return error(
                404,
                f"model {body.model!r} not found",
                "invalid_request_error",
                code="model_not_found",
            )
        assert runtime.tokenizer is not None
        vocab = runtime.tokenizer.vocab_size
        if any(token >= vocab for token, _ in body.biases()):
            raise _BadRequest(f"logit_bias names a token id past the vocabulary ({vocab} tokens)")
        if kind == "chat":
            prompt = runtime.tokenizer.encode_chat(
                [ChatMessage(m.role, m.content) for m in body.messages]
            )
        else:
            prompt = runtime.tokenizer.encode(body.prompt)
        # Tokenizing the sources (and, once, the vocabulary) is host work: off the event loop.
        copying = await asyncio.to_thread(copy_ids, body.copy_from) if body.copy_from else ()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        submitted = time.monotonic()
        with adapter_refusals():
            lease = await runtime.acquire_adapters(body.adapter_refs(), body.user)
        events = runtime.generate(prompt, params_of(body, copying), request_id, lease)
        try:
            first = await anext(events)  # admission errors surface here, before any byte is sent
        except EngineBusy as busy:
            metrics.requests.labels(endpoint, "rejected").inc()
            return error(
                429,
                str(busy),
                "rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(busy.retry_after_s)},
            )
        except ValueError as exc:
            return error(400, str(exc), "invalid_request_error", code="context_length_exceeded")
        if isinstance(first, TokenEvent):
            metrics.ttft.observe(first.at - submitted)
        shape = _ChatShape(request_id, kind, body.model, lease.applied if lease else [])
        if body.stream:
            return StreamingResponse(
                _stream(first, events, shape, metrics, endpoint),
                media_type="text/event-stream",
                headers={"x-request-id": request_id, "cache-control": "no-cache"},
            )
        done = first
        async for event in events:
            done = event
        assert isinstance(done, DoneEvent)
        _count(metrics, endpoint, done)
        return JSONResponse(shape.final(done), headers={"x-request-id": request_id})

    async def chat_completions(request: Request) -> Response:
        return await complete(request, "chat")

    async def completions(request: Request) -> Response:
        return await complete(request, "text")

    async def embeddings(request: Request) -> Response:
        body = await _parse(request, EmbeddingRequest)
        texts = body.texts()
        if body.model != EMBEDDING_MODEL_ID:
            return error(
                404,
                f"model {body.model!r} not found",
                "invalid_request_error",
                code="model_not_found",
            )
        if not texts or len(texts) > 256 or any(not t for t in texts):
            return error(400, "input must be 1 to 256 non-empty strings", "invalid_request_error")
        vectors, tokens = await runtime.embed(texts)
        metrics.requests.labels("embeddings", "ok").inc()
        return JSONResponse(
            {
                "object": "list",
                "model": EMBEDDING_MODEL_ID,
                "data": [
                    {"object": "embedding", "index": i, "embedding": v}
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(request: Request) -> Response:
        created = int(time.time())
        adapters = runtime.adapters.loaded() if runtime.adapters else []
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": BASE_MODEL_ID,
                        "object": "model",
                        "created": created,
                        "owned_by": "local",
                    },
                    {
                        "id": EMBEDDING_MODEL_ID,
                        "object": "model",
                        "created": created,
                        "owned_by": "local",
                    },
                    *(
                        {
                            "id": adapter["id"],
                            "object": "model",
                            "created": created,
                            "owned_by": adapter["owner"] or "system",
                            "parent": BASE_MODEL_ID,
                            **adapter,
                        }
                        for adapter in adapters
                    ),
                ],
            }
        )

    async def load_adapter(request: Request) -> Response:
        """Warms an adapter version into the host cache (after a publish, before traffic),
        optionally pinned for `pin_s`."""
        body = await _parse(request, LoadAdapterRequest)
        if runtime.adapters is None:
            return error(422, "no adapter slots", "invalid_request_error", code="no_adapters")
        started = time.perf_counter()
        with adapter_refusals():
            record = await runtime.adapters.preload(body.id, body.version, pin_s=body.pin_s)
        return JSONResponse(
            {
                "id": record.adapter_id,
                "version": record.version,
                "checksum": record.checksum,
                "load_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        )

    async def tokenize(request: Request) -> Response:
        """Token counts with the served model's own tokenizer, so callers (working memory)
        budget the context window exactly rather than by characters."""
        body = await _parse(request, TokenizeRequest)
        tok = runtime.tokenizer
        assert tok is not None
        limit = runtime.settings.inference_max_seq_len
        if body.prompts is not None:
            counts = [len(tok.encode(text)) for text in body.prompts]
            return JSONResponse({"counts": counts, "max_model_len": limit})
        if body.messages is not None:
            ids = tok.encode_chat([ChatMessage(m.role, m.content) for m in body.messages])
        else:
            ids = tok.encode(body.prompt or "")
        answer: dict[str, Any] = {"count": len(ids), "max_model_len": limit}
        if body.return_tokens:
            answer["tokens"] = ids
        return JSONResponse(answer)

    async def cancel(request: Request) -> Response:
        body = await _parse(request, CancelRequest)
        assert runtime.engine is not None
        return JSONResponse(
            {"request_id": body.request_id, "cancelled": runtime.cancel(body.request_id)}
        )

    async def healthz(request: Request) -> Response:
        if runtime.ready.is_set():
            return JSONResponse(
                {
                    "status": "ready",
                    "model": BASE_MODEL_ID,
                    "slots": runtime.settings.inference_slots,
                    "shapes": runtime.shapes,
                    "start_s": runtime.start_s,
                }
            )
        # Not ready until every engine shape is compiled or loaded and the warm-up has run;
        # `phase` says which step of the start it is in.
        status = "failed" if runtime.load_error else "loading"
        return JSONResponse(
            {"status": status, "phase": runtime.phase, "error": runtime.load_error},
            status_code=503,
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def guarded(endpoint: Any, *, needs_ready: bool = True) -> Any:
        """Bearer token (constant-time compare), readiness, and 400 for unreadable input."""

        async def wrapper(request: Request) -> Response:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return error(
                    401,
                    "missing or wrong bearer token",
                    "authentication_error",
                    code="invalid_api_key",
                )
            if needs_ready and not runtime.ready.is_set():
                return error(
                    503,
                    "the model is still loading",
                    "server_error",
                    code="not_ready",
                    headers={"Retry-After": "5"},
                )
            try:
                response: Response = await endpoint(request)
                return response
            except _BadRequest as exc:
                return error(400, str(exc), "invalid_request_error")
            except Refused as refused:
                return refused.response

        return wrapper

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", guarded(chat_completions), methods=["POST"]),
            Route("/v1/completions", guarded(completions), methods=["POST"]),
            Route("/v1/embeddings", guarded(embeddings), methods=["POST"]),
            Route("/v1/models", guarded(models), methods=["GET"]),
            Route("/v1/adapters/load", guarded(load_adapter), methods=["POST"]),
            Route("/v1/cancel", guarded(cancel), methods=["POST"]),
            Route("/tokenize", guarded(tokenize), methods=["POST"]),
            Route("/metrics", guarded(metrics_endpoint), methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        # Continues the caller's trace (the chat function's), so generation shows in it.
        middleware=[Middleware(ContinueTrace, name="inference")],
    )

    return app


class _ChatShape:
    """Builds OpenAI response objects for chat (`chat.completion`) or text completions."""

    def __init__(self, request_id: str, kind: str, model: str, adapters: list[dict[str, Any]]):
        self.kind, self.created, self.model, self.adapters = kind, int(time.time()), model, adapters
        self.id = ("chatcmpl-" if kind == "chat" else "cmpl-") + request_id

    def _base(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    @staticmethod
    def usage(done: DoneEvent) -> dict[str, int]:
        return {
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
        }

    def final(self, done: DoneEvent) -> dict[str, Any]:
        reason = FINISH[done.finish_reason]
        if self.kind == "chat":
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": done.text},
                "finish_reason": reason,
                "logprobs": None,
            }
            body = self._base("chat.completion")
        else:
            choice = {"index": 0, "text": done.text, "finish_reason": reason, "logprobs": None}
            body = self._base("text_completion")
        return {
            **body,
            "choices": [choice],
            "usage": self.usage(done),
            "truncated": done.truncated,
            "adapters": self.adapters,
        }

    def chunk(
        self, text: str | None, reason: str | None, usage: dict[str, int] | None = None
    ) -> str:
        if self.kind == "chat":
            delta = {"role": "assistant", "content": text} if text is not None else {}
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "finish_reason": reason,
                "logprobs": None,
            }
            body = self._base("chat.completion.chunk")
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": reason, "logprobs": None}
            body = self._base("text_completion")
        body["choices"] = [choice]
        if reason is not None:  # the final chunk says which adapters and gates were applied
            body["adapters"] = self.adapters
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body)}\n\n"


async def _stream(
    first: Any, events: AsyncIterator[Any], shape: _ChatShape, metrics: Metrics, endpoint: str
) -> AsyncIterator[str]:
    previous: float | None = None
    event = first
    while True:
        if isinstance(event, TokenEvent):
            if previous is not None:
                metrics.itl.observe(event.at - previous)
            previous = event.at
            if event.text:
                yield shape.chunk(event.text, None)
        else:
            done: DoneEvent = event
            _count(metrics, endpoint, done)
            yield shape.chunk(None, FINISH[done.finish_reason], usage=shape.usage(done))
            yield "data: [DONE]\n\n"
            return
        event = await anext(events)


def _count(metrics: Metrics, endpoint: str, done: DoneEvent) -> None:
    metrics.tokens_in.inc(done.prompt_tokens)
    metrics.tokens_out.inc(done.completion_tokens)
    metrics.requests.labels(endpoint, done.finish_reason).inc()
