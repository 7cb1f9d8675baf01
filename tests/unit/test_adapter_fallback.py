"""A model call the inference service refuses for an adapter goes again without it: the error
classification, and the retry through the real client against a small fake service that
answers as functions/inference does (its status codes, error bodies and messages)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from shared.domain.chat.adapter_fallback import AdapterFallback, classify, skipped_adapters
from shared.domain.llm.backend import AdapterUse, AppliedAdapter, GenerationParams, Message
from shared.domain.llm.local import LocalInferenceBackend
from shared.domain.llm.providers import LOCAL_MODES
from shared.platform.errors import RateLimited, Unavailable, ValidationError
from shared.platform.settings import Settings

HELLO = [Message("system", "Be brief."), Message("user", "hello")]
OWNER = "0b7c5e1e-2f0e-4c55-8f43-5a0e1d8a9c10"
HEALTHY = "1a1a1a1a-0000-4000-8000-000000000001"
GONE = "2b2b2b2b-0000-4000-8000-000000000002"
NO_FILES = "3c3c3c3c-0000-4000-8000-000000000003"
TAMPERED = "4d4d4d4d-0000-4000-8000-000000000004"
BAD_RANK = "5e5e5e5e-0000-4000-8000-000000000005"


def _error(status: int, message: str, code: str | None, kind: str = "invalid_request_error"):
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return httpx.Response(status, json=body)


# What functions/inference answers for each adapter it cannot use (errors.adapter_refusals).
REFUSALS = {
    GONE: lambda: _error(404, f"adapter {GONE!r} version 1 not found", "model_not_found"),
    NO_FILES: lambda: _error(
        422,
        f"adapter file users/{OWNER}/adapters/{NO_FILES}/v0001/adapter_config.json is missing"
        " from the store",
        "adapter_unusable",
    ),
    TAMPERED: lambda: _error(
        422,
        f"adapter {TAMPERED} v1: the files' checksum does not match the artifact's; refusing"
        " to activate it",
        "adapter_unusable",
    ),
    BAD_RANK: lambda: _error(422, "rank 64 is outside 1..16", "adapter_unusable"),
}


class FakeInference:
    """Refuses a request for the first unusable adapter it names, as the service does (it
    acquires adapters in order and stops at the first failure); answers otherwise, reporting
    the adapters it applied."""

    def __init__(self, *, always: httpx.Response | None = None):
        self.bodies: list[dict] = []
        self.always = always

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.always is not None:
            return self.always
        for adapter in body.get("adapters") or []:
            if adapter["id"] in REFUSALS:
                return REFUSALS[adapter["id"]]()
        applied = [{"id": a["id"], "version": 1, "weight": a["weight"]}
                   for a in body.get("adapters") or []]  # fmt: skip
        if not body["stream"]:
            answer = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 1}}  # fmt: skip
            return httpx.Response(200, json={**answer, "adapters": applied})
        chunks = [
            {"choices": [{"delta": {"content": "h"}, "finish_reason": None}]},
            {"choices": [{"delta": {"content": "i"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 2}, "adapters": applied},
        ]  # fmt: skip
        sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})

    def sent(self) -> list[list[str]]:
        return [[a["id"] for a in body.get("adapters") or []] for body in self.bodies]


def _backend(service: FakeInference) -> AdapterFallback:
    settings = Settings(inference_url="http://inference.test", _env_file=None)
    local = LocalInferenceBackend(settings, transport=httpx.MockTransport(service))
    return AdapterFallback(local, modes=LOCAL_MODES)


def _use(adapter_id: str, weight: float = 0.5, mode: str = "local", **kw) -> AdapterUse:
    return AdapterUse(adapter_id, weight, mode, version=1, **kw)  # type: ignore[arg-type]


# --- classification -------------------------------------------------------------------------
def test_a_refusal_naming_an_adapter_sent_refuses_that_one() -> None:
    sent = [_use(HEALTHY), _use(NO_FILES)]
    message = f"inference refused the request: adapter file shared/adapters/{NO_FILES}/v0001/x"
    refusal = classify(ValidationError(message + " is missing from the store"), sent)
    assert refusal is not None
    assert (refusal.ids, refusal.reason, refusal.named) == ((NO_FILES,), "files_missing", True)
    gone = classify(ValidationError(f"adapter '{GONE.upper()}' not found"), [_use(GONE)])
    assert gone is not None and (gone.ids, gone.reason) == ((GONE,), "not_found")
    bad = classify(ValidationError(f"adapter {TAMPERED} v1: the files' checksum ..."),
                   [_use(TAMPERED)])  # fmt: skip
    assert bad is not None and bad.reason == "checksum_mismatch"


def test_a_refusal_naming_no_adapter_refuses_every_one_sent() -> None:
    sent = [_use(HEALTHY), _use(BAD_RANK)]
    refusal = classify(ValidationError("inference refused the request: rank 64 is too big"), sent)
    assert refusal is not None
    assert (refusal.ids, refusal.reason, refusal.named) == ((HEALTHY, BAD_RANK), "refused", False)


@pytest.mark.parametrize(
    "exc",
    [
        Unavailable("inference answered 503: adapter store unavailable"),
        RateLimited(f"inference busy: all slots in use ({HEALTHY})", retry_after_s=1),
        TimeoutError(),
        RuntimeError(f"adapter {HEALTHY} broke"),
    ],
)
def test_outages_timeouts_and_back_pressure_are_no_refusal(exc: Exception) -> None:
    assert classify(exc, [_use(HEALTHY)]) is None


def test_without_adapter_weights_sent_nothing_is_refused() -> None:
    assert classify(ValidationError("prompt too long"), []) is None


def test_skips_are_listed_once_each() -> None:
    entry = {"event": "adapter_skipped", "id": GONE, "reason": "not_found"}
    trace = [entry, {"event": "prompt_injected", "id": HEALTHY}, dict(entry)]
    assert skipped_adapters(trace) == [{"id": GONE, "reason": "not_found"}]


def test_adapters_the_plan_could_not_send_are_listed_with_their_reason() -> None:
    """Beside the service's refusals, the planner's drops (`adapter_plan`): a kind the backend
    cannot run, and one beyond its `max_adapters` whose instructions were still used."""
    trace = [
        {"event": "adapter_dropped", "id": "remote-ft", "weight": 0.9,
         "reason": "mode_incompatible"},
        {"event": "adapter_dropped", "id": "third", "weight": 0.1, "reason": "max_adapters"},
        {"event": "prompt_injected", "id": "third"},
        {"event": "adapter_skipped", "id": GONE, "reason": "not_found"},
        {"event": "prompt_injected", "id": HEALTHY},
        {"event": "adapter_dropped", "id": "remote-ft", "weight": 0.9,
         "reason": "mode_incompatible"},  # a workflow's second model call
    ]  # fmt: skip
    assert skipped_adapters(trace) == [
        {"id": "remote-ft", "weight": 0.9, "reason": "mode_incompatible"},
        {"id": "third", "weight": 0.1, "reason": "max_adapters", "fallback": "prompt"},
        {"id": GONE, "reason": "not_found"},
    ]


async def test_a_local_plan_drop_reaches_the_answers_skips() -> None:
    """End to end through the client: an adapter of a kind the local service cannot run."""
    service = FakeInference()
    adapters = [_use(HEALTHY, 0.6), _use("ft", 0.4, "remote")]
    done = await _backend(service).complete(HELLO, GenerationParams(), adapters=adapters)
    assert service.sent() == [[HEALTHY]]
    assert [(e["id"], e["reason"]) for e in skipped_adapters(done.trace)] == [
        ("ft", "mode_incompatible")
    ]


# --- the retry through the client -----------------------------------------------------------
async def test_a_call_goes_again_without_the_adapter_whose_files_are_missing(caplog) -> None:
    service = FakeInference()
    adapters = [_use(HEALTHY, 0.6), _use(NO_FILES, 0.4)]
    with caplog.at_level(logging.WARNING, logger="chat"):
        done = await _backend(service).complete(
            HELLO, GenerationParams(), request_id="r1", adapters=adapters
        )
    assert service.sent() == [[HEALTHY, NO_FILES], [HEALTHY]]
    assert done.text == "hi"
    assert done.adapters == (AppliedAdapter(HEALTHY, 0.6, "lora", version=1),)
    skipped = {"event": "adapter_skipped", "id": NO_FILES, "version": 1, "weight": 0.4,
               "reason": "files_missing", "named": True}  # fmt: skip
    assert done.trace == (skipped,)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and NO_FILES in warned[0].getMessage()
    assert "files_missing" in warned[0].getMessage() and "r1" in warned[0].getMessage()


async def test_a_stream_is_refused_before_its_first_token_and_answers_once() -> None:
    service = FakeInference()
    adapters = [_use(TAMPERED), _use(HEALTHY)]
    deltas = [d async for d in _backend(service).stream(HELLO, GenerationParams(),
                                                        adapters=adapters)]  # fmt: skip
    assert service.sent() == [[TAMPERED, HEALTHY], [HEALTHY]]
    assert "".join(d.text for d in deltas) == "hi"
    final = deltas[-1]
    assert final.finish_reason == "stop"
    assert final.adapters == (AppliedAdapter(HEALTHY, 0.5, "lora", version=1),)
    assert [(e["id"], e["reason"]) for e in final.trace] == [(TAMPERED, "checksum_mismatch")]
    assert all(d.trace == () for d in deltas[:-1])


async def test_every_unusable_adapter_is_left_out_one_refusal_at_a_time() -> None:
    service = FakeInference()
    adapters = [_use(GONE, 0.3), _use(HEALTHY, 0.3), _use(NO_FILES, 0.2)]
    done = await _backend(service).complete(HELLO, GenerationParams(), adapters=adapters)
    assert service.sent() == [[GONE, HEALTHY, NO_FILES], [HEALTHY, NO_FILES], [HEALTHY]]
    reasons = {e["id"]: e["reason"] for e in skipped_adapters(done.trace)}
    assert reasons == {GONE: "not_found", NO_FILES: "files_missing"}


async def test_a_refusal_naming_no_adapter_retries_with_none_keeping_prompt_fallbacks() -> None:
    service = FakeInference()
    hybrid = _use(HEALTHY, 0.5, "hybrid", prompt_instructions="Answer like a pirate.")
    style = _use("style", 0.5, "prompt", prompt_instructions="Use short words.")
    adapters = [_use(BAD_RANK), hybrid, style]
    done = await _backend(service).complete(HELLO, GenerationParams(), adapters=adapters)
    assert service.sent() == [[BAD_RANK, HEALTHY], []]
    retried = service.bodies[-1]["messages"][0]["content"]
    assert "Answer like a pirate." in retried and "Use short words." in retried
    skipped = {e["id"]: e for e in skipped_adapters(done.trace)}
    assert set(skipped) == {BAD_RANK, HEALTHY}
    assert skipped[HEALTHY]["fallback"] == "prompt" and skipped[HEALTHY]["named"] is False
    assert {a.how for a in done.adapters} == {"prompt"}


async def test_adapter_slots_full_keeps_todays_behaviour() -> None:
    full = httpx.Response(
        429, headers={"Retry-After": "1"},
        json={"error": {"message": "all 4 adapter slots are in use", "code": "adapter_slots_full"}},
    )  # fmt: skip
    service = FakeInference(always=full)
    with pytest.raises(RateLimited):
        await _backend(service).complete(HELLO, GenerationParams(), adapters=[_use(HEALTHY)])
    assert service.sent() == [[HEALTHY]]


async def test_an_outage_keeps_todays_retries_with_the_adapters() -> None:
    down = _error(503, "adapter store unavailable: ClientError", "adapter_store_unavailable",
                  "server_error")  # fmt: skip
    service = FakeInference(always=down)
    with pytest.raises(Unavailable):
        await _backend(service).complete(HELLO, GenerationParams(), adapters=[_use(HEALTHY)])
    assert service.sent() == [[HEALTHY]] * 3  # the client's own transient retries, no more


async def test_a_refusal_the_adapters_did_not_cause_is_raised_at_once() -> None:
    """The service's code says the request itself was refused (no adapter code): going
    without the adapters cannot help, so nothing is retried."""
    service = FakeInference(always=_error(400, "prompt of 900 tokens exceeds 512", None))
    with pytest.raises(ValidationError, match="900 tokens"):
        await _backend(service).complete(HELLO, GenerationParams(), adapters=[_use(HEALTHY)])
    assert service.sent() == [[HEALTHY]]
    service = FakeInference(always=_error(400, "prompt of 900 tokens exceeds 512", None))
    with pytest.raises(ValidationError):
        await _backend(service).complete(HELLO, GenerationParams())
    assert service.sent() == [[]]  # no adapters: nothing to go without
