"""Client of the local inference service (functions/inference): timeouts, retries with jitter
for calls that are safe to repeat, and a circuit breaker so a down service fails fast."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from circuitbreaker import CircuitBreaker, CircuitBreakerError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from shared.config import Settings
from shared.errors import RateLimited, Unavailable, ValidationError
from shared.llm.backend import Completion, Delta, GenerationParams, Message, Usage

MODEL = "smollm2-135m-instruct"
EMBEDDING_MODEL = "all-minilm-l6-v2"


class _Transient(Exception):
    """Connection failures and 5xx: retried, and counted by the breaker."""


def _body(messages: Sequence[Message], params: GenerationParams, stream: bool) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "max_tokens": params.max_tokens,
        "stop": list(params.stop) or None,
        "seed": params.seed,
        "max_decode_ms": params.max_decode_ms,
        "stream": stream,
    }


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    if response.status_code == 429:
        raise RateLimited(
            f"inference busy: {message}",
            retry_after_s=int(response.headers.get("retry-after", "1")),
        )
    if response.status_code in (400, 404, 422):
        raise ValidationError(f"inference refused the request: {message}")
    raise _Transient(f"inference answered {response.status_code}: {message}")


class LocalInferenceBackend:
    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None):
        if not settings.inference_url:
            raise Unavailable("INFERENCE_URL is not set")
        self._http = httpx.AsyncClient(
            base_url=settings.inference_url,
            transport=transport,
            headers={"Authorization": f"Bearer {settings.inference_token.get_secret_value()}"},
            timeout=httpx.Timeout(
                settings.inference_timeout_s, connect=settings.dependency_timeout_s
            ),
        )
        self._breaker = CircuitBreaker(
            failure_threshold=5,
            recovery_timeout=30,
            expected_exception=_Transient,
            name="inference",
        )
        self._attempts = 3

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request through the breaker; transport errors and 5xx count as failures."""

        @self._breaker
        async def call() -> httpx.Response:
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise _Transient(f"inference unreachable: {exc}") from exc
            _raise_for(response)
            return response

        try:
            return await call()
        except CircuitBreakerError as exc:
            raise Unavailable("inference is failing; circuit open") from exc

    async def _retrying(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_Transient),
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=0.2, max=2),
                reraise=True,
            ):
                with attempt:
                    return await self._send(method, path, **kwargs)
        except _Transient as exc:
            raise Unavailable(str(exc)) from exc
        raise AssertionError("unreachable")

    async def complete(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
    ) -> Completion:
        rid = request_id or uuid.uuid4().hex
        # With the same request id a retry is the same request: safe to repeat.
        response = await self._retrying(
            "POST",
            "/v1/chat/completions",
            json=_body(messages, params, False),
            headers={"x-request-id": rid},
        )
        data = response.json()
        choice = data["choices"][0]
        usage = Usage(data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"])
        return Completion(
            text=choice["message"]["content"],
            finish_reason=choice["finish_reason"],
            usage=usage,
            truncated=bool(data.get("truncated")),
            request_id=rid,
        )

    async def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        request_id: str | None = None,
    ) -> AsyncIterator[Delta]:
        rid = request_id or uuid.uuid4().hex
        request = self._http.build_request(
            "POST",
            "/v1/chat/completions",
            json=_body(messages, params, True),
            headers={"x-request-id": rid},
        )

        @self._breaker
        async def open_stream() -> httpx.Response:
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise _Transient(f"inference unreachable: {exc}") from exc
            if response.status_code >= 400:
                await response.aread()
                _raise_for(response)
            return response

        try:
            response = await open_stream()
        except CircuitBreakerError as exc:
            raise Unavailable("inference is failing; circuit open") from exc
        except _Transient as exc:
            raise Unavailable(str(exc)) from exc
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                choice = chunk["choices"][0]
                usage = chunk.get("usage")
                yield Delta(
                    text=choice["delta"].get("content") or "",
                    finish_reason=choice["finish_reason"],
                    usage=Usage(usage["prompt_tokens"], usage["completion_tokens"])
                    if usage
                    else None,
                )
        finally:
            await response.aclose()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        response = await self._retrying(
            "POST", "/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": list(texts)}
        )
        return [
            item["embedding"] for item in sorted(response.json()["data"], key=lambda d: d["index"])
        ]

    async def cancel(self, request_id: str) -> bool:
        response = await self._send("POST", "/v1/cancel", json={"request_id": request_id})
        return bool(response.json()["cancelled"])
