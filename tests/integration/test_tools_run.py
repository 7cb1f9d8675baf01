"""`POST /v1/tools/run` through the in-process gateway, the real registry (specs in Postgres,
breaker in Redis) and the real model behind the session's inference service."""

from __future__ import annotations

import uuid

import pytest

from shared.domain.tools.breaker import ToolBreaker
from tests.integration.chatkit import chat_api, user

pytestmark = pytest.mark.integration
__all__ = ["chat_api"]

CHAT = "llm.generic_chat_v1"


async def _run(client, headers, body, status=200, **kw):
    response = await client.post("/v1/tools/run", headers=headers, json=body, **kw)
    assert response.status_code == status, response.text
    payload = response.json()
    return payload["data"] if status == 200 else payload["error"]


async def _tool_spec(client, headers, name):
    schema = {"kind": "tool.spec", "name": name, "input_schema": {"type": "object"},
              "output_schema": {"type": "object"}}  # fmt: skip
    body = {"name": f"spec-{uuid.uuid4().hex[:8]}", "schema": schema}
    made = await client.post("/v1/artifacts", headers=headers, json=body)
    assert made.status_code == 201, made.text
    return made.json()["data"]["id"]


async def test_a_built_in_tool_runs_on_the_real_model(chat_api) -> None:
    _, headers = await user(chat_api)
    body = {"tool_id": CHAT, "input": {"message": "What is the capital of France?"}}
    data = await _run(chat_api, headers, body)
    assert "paris" in data["output"]["answer"].lower()
    assert data["tool"] == CHAT and data["attempts"] == 1 and data["latency_ms"] > 0
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0


async def test_input_is_checked_against_the_tool_schema(chat_api) -> None:
    _, headers = await user(chat_api)
    error = await _run(chat_api, headers, {"tool_id": CHAT, "input": {"msg": "hi"}}, 400)
    assert error["code"] == "validation_error"
    assert {"path": "", "message": "'message' is a required property"} in error["details"]


@pytest.mark.parametrize(
    "body",
    [
        {"tool_id": "../../etc/passwd", "input": {}},
        {"tool_id": CHAT, "input": {"message": "hi"}, "max_retries": 4},
        {"tool_id": CHAT, "input": {"message": "hi"}, "timeout_ms": 60_001},
        {"tool_id": CHAT, "input": "hi"},
        {"tool_id": CHAT, "input": {}, "surprise": 1},
    ],
    ids=["traversal-name", "retries-over-cap", "timeout-over-cap", "input-not-object", "extra"],
)
async def test_bad_bodies_are_refused(chat_api, body) -> None:
    _, headers = await user(chat_api)
    assert (await _run(chat_api, headers, body, 400))["code"] == "validation_error"


async def test_unknown_tools_and_others_private_specs_are_not_found(chat_api) -> None:
    _, a = await user(chat_api)
    _, b = await user(chat_api)
    assert (await _run(chat_api, a, {"tool_id": "no.such_tool_v1"}, 404))["code"] == "not_found"
    spec_id = await _tool_spec(chat_api, a, "probe.unimplemented_v1")
    # B cannot reach A's private spec by id; A can, but no code implements it.
    assert (await _run(chat_api, b, {"tool_id": spec_id}, 404))["code"] == "not_found"
    error = await _run(chat_api, a, {"tool_id": spec_id}, 404)
    assert "no implementation" in error["message"]


async def test_a_spec_id_names_its_tool(chat_api) -> None:
    _, headers = await user(chat_api)
    listed = await chat_api.get("/v1/artifacts", headers=headers,
                                params={"type": "tool.spec", "visibility": "global"})  # fmt: skip
    spec = next(i for i in listed.json()["data"]["items"] if i["schema"]["name"] == CHAT)
    body = {"tool_id": spec["id"], "input": {"message": "What is the capital of Japan?"}}
    assert "tokyo" in (await _run(chat_api, headers, body))["output"]["answer"].lower()


async def test_every_attempt_is_timed_out_within_the_caps(chat_api) -> None:
    _, headers = await user(chat_api)
    body = {"tool_id": CHAT, "input": {"message": "Tell me a story."}, "timeout_ms": 1,
            "max_retries": 1}  # fmt: skip
    error = await _run(chat_api, headers, body, 502)
    assert error["code"] == "server_error"
    assert error["details"] == {"tool": CHAT, "reason": "timeout", "attempts": 2,
                                "timeout_ms": 1, "max_retries": 1}  # fmt: skip


async def test_an_open_breaker_refuses_at_once(chat_api, model_services) -> None:
    _, headers = await user(chat_api)
    tool, breaker = "memory.summarize_v1", ToolBreaker(model_services.redis)
    try:
        for _ in range(5):
            await breaker.failure(tool)
        body = {"tool_id": tool, "input": {"messages": [{"role": "user", "content": "hi"}]}}
        response = await chat_api.post("/v1/tools/run", headers=headers, json=body)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["details"]["reason"] == "circuit_open"
        assert int(response.headers["retry-after"]) > 0
    finally:
        await model_services.redis.delete(*ToolBreaker._keys(tool))


async def test_an_idempotency_key_replays_the_run(chat_api) -> None:
    _, headers = await user(chat_api)
    keyed = {**headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = {"tool_id": CHAT, "input": {"message": "Which planet is known as the Red Planet?"}}
    first = await _run(chat_api, keyed, body)
    again = await _run(chat_api, keyed, body)
    assert again == first and "mars" in first["output"]["answer"].lower()
    other = {**body, "input": {"message": "Something else"}}
    assert (await _run(chat_api, keyed, other, 409))["details"] == {"reason": "key_reused"}
