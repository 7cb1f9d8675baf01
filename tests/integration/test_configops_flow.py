"""ConfigOps end to end on the real stack: a routing-policy patch proposed by its owner,
approved and applied by an admin through `POST /v1/config/apply`, carried by the outbox to
ApplyPatchQueue and applied by the apply-patch function under the real dispatcher; the next
chat turn (the real model) is routed by the new version, and the trace shows its rule."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.chatkit import chat_api
from tests.integration.configkit import (
    admin,
    approved_and_applying,
    artifact,
    member,
    patch_of,
    proposed,
)

pytestmark = pytest.mark.integration
__all__ = ["chat_api"]

PROBE_RULE = {"id": "configops_probe", "when": "true",
              "action": {"type": "deactivate_all_adapters"}}  # fmt: skip


async def _turn(client, headers: dict, content: str) -> dict:
    response = await client.post("/v1/chat", headers=headers,
                                 json={"message": {"content": content}})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["data"]["trace"]["router"]


async def _applied(client, headers: dict, patch_id: int, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        patch = await patch_of(client, headers, patch_id)
        if patch["status"] not in ("approved", "applying"):
            return patch
        await asyncio.sleep(0.3)
    raise AssertionError(f"patch {patch_id} not applied within {timeout_s}s")


async def test_an_applied_patch_routes_the_next_turn(chat_api, workers, settings) -> None:
    _, headers = await member(chat_api)
    boss = await admin(chat_api, settings)
    policy = await artifact(chat_api, headers)
    before = await _turn(chat_api, headers, "What is the capital of France?")
    assert before["policy_id"] == policy["id"] and before["policy_version"] == 1
    assert "configops_probe" not in [r["id"] for r in before["rules"]]

    started = time.monotonic()
    ops = [{"op": "add", "path": "/rules/0", "value": PROBE_RULE}]
    patch = await proposed(chat_api, headers, artifact_id=policy["id"], patch=ops)
    assert patch["status"] == "pending" and patch["validation"]["ok"], patch
    await approved_and_applying(chat_api, boss, patch["id"])
    done = await _applied(chat_api, headers, patch["id"])
    elapsed = time.monotonic() - started
    assert done["status"] == "applied" and done["applied_version"] == 2, done
    print(f"propose -> applied through the queue: {elapsed:.2f} s")

    after = await _turn(chat_api, headers, "What is the capital of Japan?")
    assert after["policy_id"] == policy["id"] and after["policy_version"] == 2
    probe = next(r for r in after["rules"] if r["id"] == "configops_probe")
    assert probe["fired"] is True
