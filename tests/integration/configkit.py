"""Helpers for the ConfigOps tests: an admin, a private routing policy, proposals, and the
apply-patch function's handler fed SQS records in-process (as the dispatcher would)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from infra.admin import promote
from tests.integration.authkit import bearer, sign_up

POLICY = {
    "kind": "policy.routing",
    "name": "mine",
    "max_active_adapters": 2,
    "rules": [
        {"id": "persona", "when": "true",
         "action": {"type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.5}},
    ],
}  # fmt: skip
NEW_RULE = {"id": "quiet_when_risky", "when": "safety_risk == 'high'",
            "action": {"type": "deactivate_all_adapters"}}  # fmt: skip
ADD_RULE = [{"op": "add", "path": "/rules/-", "value": NEW_RULE}]


async def admin(api, settings) -> dict[str, str]:
    signed = await sign_up(api)
    await promote(settings, signed["user"]["email"])
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    return bearer(refreshed.json()["data"]["access_token"])


async def member(api) -> tuple[str, dict[str, str]]:
    signed = await sign_up(api)
    return signed["user"]["id"], bearer(signed["access_token"])


async def artifact(api, headers: dict, schema: dict | None = None, **extra: Any) -> dict:
    schema = schema or POLICY
    body = {"name": f"{schema['kind']}-{uuid.uuid4().hex[:8]}", "schema": schema, **extra}
    made = await api.post("/v1/artifacts", headers=headers, json=body)
    assert made.status_code == 201, made.text
    return made.json()["data"]


async def propose(api, headers: dict, path: str = "/v1/config/propose_patch", **body: Any):
    return await api.post(path, headers=headers, json={"justification": "test", **body})


async def proposed(api, headers: dict, **body: Any) -> dict:
    made = await propose(api, headers, **body)
    assert made.status_code == 201, made.text
    return made.json()["data"]


async def patch_of(api, headers: dict, patch_id: int) -> dict:
    got = await api.get(f"/v1/config/patches/{patch_id}", headers=headers)
    assert got.status_code == 200, got.text
    return got.json()["data"]


async def approved_and_applying(api, admin_headers: dict, patch_id: int) -> dict:
    decided = await api.post(f"/v1/config/patches/{patch_id}/decide", headers=admin_headers,
                             json={"decision": "approve", "reason": "looks right"})  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert decided.json()["data"]["status"] == "approved"
    queued = await api.post("/v1/config/apply", headers=admin_headers, json={"patch_id": patch_id})
    assert queued.status_code == 202, queued.text
    assert queued.json()["data"]["status"] == "applying"
    return queued.json()["data"]


def record(patch_id: int, *, receive: int = 1) -> Any:
    from shared.platform.runtime.batch import SqsRecord

    return SqsRecord(
        messageId=str(uuid.uuid4()), receiptHandle=uuid.uuid4().hex,
        body=json.dumps({"patch_id": patch_id}),
        attributes={"ApproximateReceiveCount": str(receive)},
        eventSourceARN="arn:aws:sqs:us-east-1:000000000000:test-apply-patch",
    )  # fmt: skip


async def deliver(services, patch_id: int, *, times: int = 1) -> None:
    """The apply-patch handler, given the same message `times` times at once."""
    from functions.apply_patch.main import handle

    await asyncio.gather(*(handle(record(patch_id), services=services) for _ in range(times)))


async def versions(api, headers: dict, artifact_id: str) -> list[dict]:
    got = await api.get(f"/v1/artifacts/{artifact_id}/versions", headers=headers)
    assert got.status_code == 200, got.text
    return got.json()["data"]["items"]
