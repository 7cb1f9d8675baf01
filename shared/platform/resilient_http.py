"""HTTP plumbing for the services the functions call (the LLM backends, the voice service;
DESIGN.md §5a): timeouts, retries with jitter for transient failures only, a circuit breaker so
a failing service fails fast, and one mapping of HTTP answers onto `shared.platform.errors`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from circuitbreaker import CircuitBreaker, CircuitBreakerError
from opentelemetry.trace import SpanKind
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from shared.platform.errors import RateLimited, Unavailable, ValidationError
from shared.platform.tracing import inject, span


class Transient(Exception):
    """Connection failures, timeouts, 408 and 5xx: retried, and counted by the breaker."""


def provider_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        # OpenAI nests {"error": {"message": ...}}; TGI/LoRAX answer {"error": "..."}.
        message = error["message"] if isinstance(error, dict) else str(error)
    except (ValueError, KeyError, TypeError):
        message = response.text
    return str(message)[:300]


def _retry_after_s(value: str | None) -> int:
    try:
        return max(1, math.ceil(float(value or "")))
    except (ValueError, OverflowError):  # absent, or the HTTP-date form: a second will do
        return 1


# What a client makes of a service's 4xx refusal (not 401/403/408/429): the response (read)
# in, the error to raise out.
Refusal = Callable[[httpx.Response], Exception]


def raise_for_status(response: httpx.Response, service: str,
                     refusal: Refusal | None = None) -> None:  # fmt: skip
    status = response.status_code
    if status < 400:
        return
    if status in (401, 403):
        # Our credentials, not the caller's request; the provider's text may echo the key.
        raise Unavailable(f"{service} refused our credentials (HTTP {status})")
    message = provider_message(response)
    if status == 429:
        raise RateLimited(
            f"{service} busy: {message}",
            retry_after_s=_retry_after_s(response.headers.get("retry-after")),
        )
    if status == 408 or status >= 500:
        raise Transient(f"{service} answered {status}: {message}")
    if refusal is not None:
        raise refusal(response)
    raise ValidationError(f"{service} refused the request: {message}")


class ResilientClient:
    """An httpx client for one service: `send` retries transient failures (the caller makes
    sure a repeat is safe), `open_stream` does too before any byte is read. `refusal` turns
    the service's own 4xx answers into the caller's error (default: ValidationError)."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        connect_timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        attempts: int = 3,
        refusal: Refusal | None = None,
    ):
        self.service = service
        self._refusal = refusal
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )
        self._breaker = CircuitBreaker(
            failure_threshold=5,
            recovery_timeout=30,
            expected_exception=Transient,
            name=service,
        )
        self._attempts = attempts

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send_once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One attempt, through the breaker; for calls that must not be repeated."""
        try:
            return await self._attempt(method, path, stream=False, **kwargs)
        except Transient as exc:
            raise Unavailable(str(exc)) from exc

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._retrying(method, path, stream=False, **kwargs)

    async def open_stream(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A streamed response with a success status; the caller closes it."""
        return await self._retrying(method, path, stream=True, **kwargs)

    async def _retrying(
        self, method: str, path: str, *, stream: bool, **kwargs: Any
    ) -> httpx.Response:
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(Transient),
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=0.2, max=2),
                reraise=True,
            ):
                with attempt:
                    return await self._attempt(method, path, stream=stream, **kwargs)
        except Transient as exc:
            raise Unavailable(str(exc)) from exc
        raise AssertionError("unreachable")

    async def _attempt(
        self, method: str, path: str, *, stream: bool, **kwargs: Any
    ) -> httpx.Response:
        @self._breaker
        async def call() -> httpx.Response:
            request = self._http.build_request(method, path, **kwargs)
            # A client span per attempt (until the answer's head, for a stream); the service
            # continues the trace from its `traceparent`.
            with span(f"{self.service} {method} {path}", kind=SpanKind.CLIENT,
                      attributes={"server.address": request.url.host}) as current:  # fmt: skip
                request.headers.update(inject({}))
                try:
                    response = await self._http.send(request, stream=stream)
                except httpx.TransportError as exc:  # timeouts included
                    raise Transient(f"{self.service} unreachable: {exc!r}") from exc
                current.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                if stream:
                    await response.aread()
                    await response.aclose()
                raise_for_status(response, self.service, self._refusal)
            return response

        try:
            return await call()
        except CircuitBreakerError as exc:
            raise Unavailable(f"{self.service} is failing; circuit open") from exc
