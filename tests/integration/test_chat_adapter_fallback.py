"""A chat turn does not fail because a routed adapter is unusable: against the real stack and
the session's inference service, adapters whose files are missing from the bucket, whose
version row was deleted after routing read it, or whose files fail their checksum are left
out of the answer, which the routed healthy adapter still shapes; the answer (blocking or
streamed) and the stored message say which adapters were skipped and why."""

from __future__ import annotations

import logging
import uuid

import pytest

from shared.domain.adapters.objects import delete_version
from shared.domain.adapters.registry import AdapterFiles, publish
from shared.neural import peft
from shared.neural.peft import WEIGHTS_FILE, dump
from tests.integration.chatkit import chat_api, parse_sse, tokens_of, user
from tests.integration.conftest import adapter_weights

pytestmark = pytest.mark.integration
__all__ = ["chat_api"]

QUESTION = "What is the capital of France?"


def _policy(adapter_ids: list[str]) -> dict:
    """The persona at a fixed gate, and each of `adapter_ids` by id."""
    rules = [{"id": "persona", "when": "true",
              "action": {"type": "activate_adapter_by_type", "adapter_type": "persona",
                         "weight": 0.5}}]  # fmt: skip
    rules += [
        {"id": f"skill_{i}", "when": "true",
         "action": {"type": "activate_adapter_by_id", "adapter_id": adapter_id, "weight": 0.3}}
        for i, adapter_id in enumerate(adapter_ids)
    ]  # fmt: skip
    return {"kind": "policy.routing", "name": "routes-broken", "max_active_adapters": 3,
            "weight_floor": 0.05, "rules": rules}  # fmt: skip


async def _route_to(chat_api, headers: dict, adapter_ids: list[str]) -> None:
    body = {"name": "routes-broken", "schema": _policy(adapter_ids)}
    made = await chat_api.post("/v1/artifacts", headers=headers, json=body)
    assert made.status_code == 201, made.text


async def _stored_meta(model_services, message_id: str) -> dict:
    async with model_services.db.connection() as conn:
        row = await (
            await conn.execute("SELECT meta FROM message WHERE id = %s", (message_id,))
        ).fetchone()
    assert row is not None
    return row[0]


def _lora_ids(applied: list[dict]) -> set[str]:
    return {a["id"] for a in applied if a["how"] == "lora"}


async def test_a_global_adapter_without_files_is_skipped_not_fatal(
    chat_api, adapters, model_services, caplog
) -> None:
    user_id, headers = await user(chat_api)
    persona = await adapters.publish(user_id, seed=41, kind="persona")
    broken = await publish(
        adapters.pool, adapters.s3, adapters.bucket,
        AdapterFiles(*peft.dump_with_checksum(adapter_weights(42))),
        owner_user_id=None, name=f"global-{uuid.uuid4().hex[:8]}", adapter_type="skill",
        visibility="global",
    )  # fmt: skip
    try:
        delete_version(adapters.s3, adapters.bucket, broken.prefix)  # rows stay, files go
        await _route_to(chat_api, headers, [broken.adapter_id])
        with caplog.at_level(logging.WARNING, logger="chat"):
            response = await chat_api.post(
                "/v1/chat", headers=headers, json={"message": {"content": QUESTION}}
            )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["content"].strip()
        routed = {a["id"] for a in data["trace"]["router"]["adapters"]}
        assert routed == {persona.adapter_id, broken.adapter_id}
        assert _lora_ids(data["adapters"]) == {persona.adapter_id}  # the healthy one applies
        (skipped,) = data["adapters_skipped"]
        assert skipped["id"] == broken.adapter_id and skipped["version"] == 1
        assert skipped["reason"] == "files_missing" and skipped["named"] is True
        meta = await _stored_meta(model_services, data["message_id"])
        assert meta["adapters_skipped"] == data["adapters_skipped"]
        assert _lora_ids(meta["adapters"]) == {persona.adapter_id}
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(broken.adapter_id in m and "files_missing" in m for m in warned), warned
    finally:
        async with adapters.pool.connection() as conn:
            await conn.execute("DELETE FROM artifact WHERE id = %s", (broken.adapter_id,))


async def test_a_streamed_turn_skips_deleted_and_tampered_adapters_before_its_first_token(
    chat_api, adapters, model_services
) -> None:
    user_id, headers = await user(chat_api)
    persona = await adapters.publish(user_id, seed=43, kind="persona")
    gone = await adapters.publish(user_id, seed=44)
    tampered = await adapters.publish(user_id, seed=45)
    # Deleted after routing read it: the artifact row the router reads stays, its version
    # row (what the service resolves) is gone.
    async with adapters.pool.connection() as conn:
        await conn.execute("DELETE FROM artifact_version WHERE artifact_id = %s",
                           (gone.adapter_id,))  # fmt: skip
    other = dump(adapter_weights(seed=46))[WEIGHTS_FILE]  # valid, but not the published file
    adapters.s3.put_object(Bucket=adapters.bucket, Key=tampered.prefix + WEIGHTS_FILE, Body=other)
    await _route_to(chat_api, headers, [gone.adapter_id, tampered.adapter_id])

    body = {"message": {"content": QUESTION}, "stream": True}
    response = await chat_api.post("/v1/chat", headers=headers, json=body)
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert "error" not in names and names[-1] == "message_done", names
    assert tokens_of(events).strip()
    done = events[-1][1]
    routed = {a["id"] for a in done["trace"]["router"]["adapters"]}
    assert routed == {persona.adapter_id, gone.adapter_id, tampered.adapter_id}
    assert _lora_ids(done["adapters"]) == {persona.adapter_id}
    reasons = {s["id"]: s["reason"] for s in done["adapters_skipped"]}
    assert reasons == {gone.adapter_id: "not_found", tampered.adapter_id: "checksum_mismatch"}
    meta = await _stored_meta(model_services, done["message_id"])
    assert meta["adapters_skipped"] == done["adapters_skipped"]
    assert meta["finish_reason"] != "error" and meta["ended_early"] is False
