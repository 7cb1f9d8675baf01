"""ConfigOps on the real stack: proposals validated (and rejected with details, changing
nothing), who may propose and decide, the apply step under duplicate delivery, a stale base,
a failed apply, rollback, new artifacts, the auto-approve rule and the rate budget. The
apply-patch handler is fed its SQS records in-process here (several at once for the duplicate
delivery); tests/integration/test_configops_flow.py runs it behind the real queue."""

from __future__ import annotations

import copy

import pydantic
import pytest

from functions.apply_patch.main import handle
from shared.domain.configops.apply import give_up
from shared.domain.configops.models import Proposer
from shared.domain.configops.propose import Proposal, propose
from shared.platform.audit import Actor
from shared.platform.errors import RateLimited
from tests.integration.configkit import (
    ADD_RULE,
    NEW_RULE,
    POLICY,
    admin,
    approved_and_applying,
    artifact,
    deliver,
    member,
    patch_of,
    proposed,
    record,
    versions,
)
from tests.integration.configkit import propose as post_proposal

pytestmark = pytest.mark.integration

WORKFLOW = {
    "kind": "workflow.chat",
    "entrypoint": "route",
    "nodes": [
        {"id": "route", "type": "switch", "branches": [{"when": "true", "next": "plain"}]},
        {"id": "plain", "type": "tool_call", "tool": "llm.generic_chat_v1",
         "inputs": {"message": "${input.message}"}, "next": "end"},
        {"id": "end", "type": "end"},
    ],
}  # fmt: skip


def _tool(name: str) -> dict:
    return {"kind": "tool.spec", "name": name, "input_schema": {"type": "object"},
            "output_schema": {"type": "object"}}  # fmt: skip


async def test_a_valid_proposal_is_pending_with_its_validation_and_dry_run(api) -> None:
    user_id, headers = await member(api)
    policy = await artifact(api, headers)
    patch = await proposed(api, headers, artifact_id=policy["id"], patch=ADD_RULE)
    assert patch["status"] == "pending" and patch["proposer"] == "user"
    assert patch["proposed_by"] == user_id and patch["owner_user_id"] == user_id
    assert patch["base_version"] == 1 and patch["kind"] == "policy.routing"
    assert patch["validation"] == {"ok": True, "problems": []}
    assert isinstance(patch["dry_run"], dict)  # a replay summary, or why there is none
    assert await patch_of(api, headers, patch["id"]) == patch
    # SPEC §18's path proposes the same way; the list pages newest first and filters.
    again = await proposed(api, headers, path="/v1/config/patches", artifact_id=policy["id"],
                           patch=[{"op": "replace", "path": "/max_active_adapters",
                                   "value": 1}])  # fmt: skip
    first = await api.get("/v1/config/patches", headers=headers, params={"limit": 1})
    page = first.json()["data"]
    assert [p["id"] for p in page["items"]] == [again["id"]] and page["next_cursor"]
    second = await api.get("/v1/config/patches", headers=headers,
                           params={"limit": 1, "cursor": page["next_cursor"]})  # fmt: skip
    assert [p["id"] for p in second.json()["data"]["items"]] == [patch["id"]]
    rejected = await api.get("/v1/config/patches", headers=headers, params={"status": "rejected"})
    assert rejected.json()["data"]["items"] == []
    # Another user sees none of it.
    _, other = await member(api)
    assert (await api.get(f"/v1/config/patches/{patch['id']}", headers=other)).status_code == 404
    listed = (await api.get("/v1/config/patches", headers=other)).json()["data"]["items"]
    assert not {p["id"] for p in listed} & {patch["id"], again["id"]}


async def test_approve_then_apply_writes_the_next_version_once(api, settings, services) -> None:
    _, headers = await member(api)
    boss = await admin(api, settings)
    policy = await artifact(api, headers)
    patch = await proposed(api, headers, artifact_id=policy["id"], patch=ADD_RULE)
    await approved_and_applying(api, boss, patch["id"])
    # Asking again while it is applying queues nothing more and answers the same.
    again = await api.post(f"/v1/config/patches/{patch['id']}/apply", headers=boss)
    assert again.status_code == 202 and again.json()["data"]["status"] == "applying"

    await deliver(services, patch["id"], times=3)  # three deliveries of the message at once
    await deliver(services, patch["id"])  # and a late redelivery
    done = await patch_of(api, headers, patch["id"])
    assert done["status"] == "applied" and done["applied_version"] == 2, done
    assert done["applied_at"] and done["decision_reason"] == "looks right"
    listed = await versions(api, headers, policy["id"])
    assert [v["version"] for v in listed] == [2, 1]
    assert listed[0]["schema"]["rules"][-1] == NEW_RULE
    assert listed[0]["change_note"] == f"config patch {patch['id']}: test"
    current = (await api.get(f"/v1/artifacts/{policy['id']}", headers=headers)).json()["data"]
    assert current["version"] == 2
    # Done is done: neither decided nor applied again.
    late = await api.post(f"/v1/config/patches/{patch['id']}/apply", headers=boss)
    assert late.status_code == 409 and late.json()["error"]["details"]["reason"] == "applied"
    decided = await api.post(f"/v1/config/patches/{patch['id']}/decide", headers=boss,
                             json={"decision": "reject", "reason": "too late"})  # fmt: skip
    assert decided.status_code == 409
    # Every decision and apply is in the audit log.
    for event in ("configops.proposed", "configops.decided", "configops.apply_requested",
                  "configops.applied"):  # fmt: skip
        log = await api.get("/v1/admin/audit", headers=boss, params={"event": event})
        ids = [e["details"].get("patch_id") for e in log.json()["data"]["items"]]
        assert patch["id"] in ids, event


async def test_invalid_patches_are_rejected_with_details_and_change_nothing(api) -> None:
    _, headers = await member(api)
    policy = await artifact(api, headers)
    workflow = await artifact(api, headers, WORKFLOW)
    cases = [
        (policy, [{"op": "add", "path": "/bogus", "value": 1}], None, ""),  # schema
        (policy, [{"op": "replace", "path": "/rules/0/when",
                   "value": "().__class__.__bases__"}], None, "/rules/0/when"),  # unsafe
        (policy, [{"op": "replace", "path": "/rules/0/when", "value": "true and ("}], None,
         "/rules/0/when"),  # does not compile
        (workflow, [{"op": "replace", "path": "/nodes/1/tool", "value": "nope.missing_v1"}],
         None, "/nodes/1/tool"),  # an unknown tool
        (policy, [{"op": "remove", "path": "/rules/9"}], None, "/rules/9"),  # does not apply
        (policy, ADD_RULE, 2, ""),  # a base the artifact is not at
        (policy, [{"op": "replace", "path": "/name", "value": "mine"}], None, ""),  # no change
    ]  # fmt: skip
    for target, ops, base, path in cases:
        body = {"artifact_id": target["id"], "patch": ops}
        patch = await proposed(api, headers, **body, **({"base_version": base} if base else {}))
        assert patch["status"] == "rejected", (ops, patch)
        problems = patch["validation"]["problems"]
        assert patch["validation"]["ok"] is False and problems, ops
        assert any(p["path"] == path for p in problems), (ops, problems)
        assert patch["dry_run"] is None and patch["decision_reason"]
    for target in (policy, workflow):
        assert [v["version"] for v in await versions(api, headers, target["id"])] == [1]


async def test_who_may_propose(api, settings) -> None:
    owner_id, owner = await member(api)
    _, other = await member(api)
    boss = await admin(api, settings)
    mine = await artifact(api, owner)
    # Another user's private artifact is not found, and nothing is stored for it.
    refused = await post_proposal(api, other, artifact_id=mine["id"], patch=ADD_RULE)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    stored = await api.get("/v1/config/patches", headers=boss, params={"artifact_id": mine["id"]})
    assert stored.json()["data"]["items"] == []
    # A shared artifact (even one's own) and the global seeds: admins only.
    shared = await artifact(api, owner, visibility="shared")
    seeds = await api.get("/v1/artifacts", headers=owner,
                          params={"owner": "global", "type": "policy.routing"})  # fmt: skip
    seed = next(a for a in seeds.json()["data"]["items"] if a["name"] == "default_user_routing")
    for target in (shared, seed):
        refused = await post_proposal(api, owner, artifact_id=target["id"], patch=ADD_RULE)
        assert refused.status_code == 403, refused.text
    # An admin may propose for anyone's artifact (validated as its owner would use it).
    by_admin = await proposed(api, boss, artifact_id=mine["id"], patch=ADD_RULE)
    assert by_admin["proposer"] == "human_admin" and by_admin["status"] == "pending"
    assert by_admin["owner_user_id"] == owner_id
    # ... which the owner then sees among their patches.
    seen = (await api.get("/v1/config/patches", headers=owner)).json()["data"]["items"]
    assert by_admin["id"] in {p["id"] for p in seen}
    # What it does, to whoever may see the patch (the admin, though the artifact is private):
    # the base version and the patched schema; to anyone else, nothing.
    for viewer in (boss, owner):
        shown = await api.get(f"/v1/config/patches/{by_admin['id']}/preview", headers=viewer)
        assert shown.status_code == 200, shown.text
        view = shown.json()["data"]
        assert view["base_version"] == 1 and view["before"]["rules"] == POLICY["rules"]
        assert view["after"]["rules"] == [*POLICY["rules"], NEW_RULE] and view["problems"] == []
    hidden = await api.get(f"/v1/config/patches/{by_admin['id']}/preview", headers=other)
    assert hidden.status_code == 404


async def test_a_non_admin_cannot_decide_or_apply(api) -> None:
    _, headers = await member(api)
    patch = await proposed(api, headers, artifact_id=(await artifact(api, headers))["id"],
                           patch=ADD_RULE)  # fmt: skip
    for method_path, body in (
        (f"/v1/config/patches/{patch['id']}/decide", {"decision": "approve", "reason": "mine"}),
        (f"/v1/config/patches/{patch['id']}/apply", None),
        ("/v1/config/apply", {"patch_id": patch["id"]}),
    ):
        response = await api.post(method_path, headers=headers, json=body)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
    assert (await patch_of(api, headers, patch["id"]))["status"] == "pending"


async def test_a_moved_base_fails_the_apply_as_stale(api, settings, services) -> None:
    _, headers = await member(api)
    boss = await admin(api, settings)
    policy = await artifact(api, headers)
    patch = await proposed(api, headers, artifact_id=policy["id"], patch=ADD_RULE)
    await approved_and_applying(api, boss, patch["id"])
    moved = await api.patch(f"/v1/artifacts/{policy['id']}", headers=headers, json={
        "patch": [{"op": "replace", "path": "/max_active_adapters", "value": 3}]})  # fmt: skip
    assert moved.status_code == 200 and moved.json()["data"]["version"] == 2
    await deliver(services, patch["id"])
    failed = await patch_of(api, headers, patch["id"])
    assert failed["status"] == "failed" and failed["applied_version"] is None
    assert failed["failure_reason"].startswith("stale base: the artifact is at version 2")
    listed = await versions(api, headers, policy["id"])
    assert [v["version"] for v in listed] == [2, 1]
    assert NEW_RULE not in listed[0]["schema"]["rules"]


async def test_a_failed_apply_leaves_the_artifact_untouched(api, settings, services) -> None:
    _, headers = await member(api)
    boss = await admin(api, settings)
    tool = await artifact(api, headers, _tool("mine.probe_v1"))
    workflow = await artifact(api, headers, WORKFLOW)
    ops = [{"op": "replace", "path": "/nodes/1/tool", "value": "mine.probe_v1"}]
    patch = await proposed(api, headers, artifact_id=workflow["id"], patch=ops)
    assert patch["status"] == "pending", patch
    await approved_and_applying(api, boss, patch["id"])
    # The tool it names goes away before the apply: the re-check refuses the patch.
    assert (await api.delete(f"/v1/artifacts/{tool['id']}", headers=headers)).status_code == 200
    await deliver(services, patch["id"])
    failed = await patch_of(api, headers, patch["id"])
    assert failed["status"] == "failed", failed
    assert "/nodes/1/tool" in failed["failure_reason"]
    assert [v["version"] for v in await versions(api, headers, workflow["id"])] == [1]
    log = await api.get("/v1/admin/audit", headers=boss, params={"event": "configops.apply_failed"})
    assert patch["id"] in [e["details"]["patch_id"] for e in log.json()["data"]["items"]]


async def test_rollback_restores_an_earlier_version(api, settings, services) -> None:
    _, headers = await member(api)
    boss = await admin(api, settings)
    policy = await artifact(api, headers)
    forward = await proposed(api, headers, artifact_id=policy["id"], patch=ADD_RULE)
    await approved_and_applying(api, boss, forward["id"])
    await deliver(services, forward["id"])
    back = await proposed(api, headers, artifact_id=policy["id"], restore_version=1)
    assert back["status"] == "pending" and back["meta"] == {"restores_version": 1}
    assert back["base_version"] == 2 and back["patch"]  # the RFC 6902 ops back to version 1
    await approved_and_applying(api, boss, back["id"])
    await deliver(services, back["id"])
    assert (await patch_of(api, headers, back["id"]))["applied_version"] == 3
    listed = await versions(api, headers, policy["id"])
    assert [v["version"] for v in listed] == [3, 2, 1]
    assert listed[0]["schema"] == listed[2]["schema"] == POLICY
    # Restoring the current schema, or a version that does not exist, is no proposal.
    for version in (3, 99):
        refused = await post_proposal(api, headers, artifact_id=policy["id"],
                                      restore_version=version)  # fmt: skip
        assert refused.status_code == 400, refused.text


async def test_a_patch_may_create_an_artifact(api, settings, services) -> None:
    user_id, headers = await member(api)
    boss = await admin(api, settings)
    ops = [{"op": "add", "path": "/name", "value": "made.by_patch_v1"},
           {"op": "add", "path": "/input_schema", "value": {"type": "object"}},
           {"op": "add", "path": "/output_schema", "value": {"type": "object"}}]  # fmt: skip
    patch = await proposed(api, headers, create={"kind": "tool.spec", "name": "made"}, patch=ops)
    assert patch["status"] == "pending" and patch["artifact_id"] is None, patch
    assert patch["new_name"] == "made" and patch["owner_user_id"] == user_id
    await approved_and_applying(api, boss, patch["id"])
    await deliver(services, patch["id"])
    done = await patch_of(api, headers, patch["id"])
    assert done["status"] == "applied" and done["applied_version"] == 1 and done["artifact_id"]
    made = (await api.get(f"/v1/artifacts/{done['artifact_id']}", headers=headers)).json()
    assert made["data"]["owner"] == "me" and made["data"]["schema"]["name"] == "made.by_patch_v1"
    # A user makes only private artifacts this way.
    refused = await post_proposal(
        api, headers, patch=ops, create={"kind": "tool.spec", "name": "x", "visibility": "global"}
    )
    assert refused.status_code == 403


async def test_bad_input_is_a_400_envelope(api, settings) -> None:
    _, headers = await member(api)
    boss = await admin(api, settings)
    policy = await artifact(api, headers)
    for body in (
        {}, {"patch": ADD_RULE}, {"artifact_id": policy["id"]},
        {"artifact_id": policy["id"], "patch": "remove everything"},
        {"artifact_id": "not-a-uuid", "patch": ADD_RULE},
        {"artifact_id": policy["id"], "patch": ADD_RULE, "base_version": 0},
        {"create": {"kind": "nope", "name": "x"}, "patch": ADD_RULE},
    ):  # fmt: skip
        response = await post_proposal(api, headers, **body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    patch = await proposed(api, headers, artifact_id=policy["id"], patch=ADD_RULE)
    for body in ({"decision": "maybe", "reason": "x"}, {"decision": "approve"}, []):
        response = await api.post(f"/v1/config/patches/{patch['id']}/decide", headers=boss,
                                  json=body)  # fmt: skip
        assert response.status_code == 400, response.text
    for body in ({"patch_id": "x"}, {"patch_id": 0}, {}):
        response = await api.post("/v1/config/apply", headers=boss, json=body)
        assert response.status_code == 400, response.text
    for query in ({"status": "bogus"}, {"cursor": "garbage"}, {"limit": 0}):
        response = await api.get("/v1/config/patches", headers=headers, params=query)
        assert response.status_code == 400, (query, response.text)
    for raw in ("abc", "0", "99999999999999999999", str(patch["id"] + 10**9)):
        response = await api.get(f"/v1/config/patches/{raw}", headers=headers)
        assert response.status_code == 404, (raw, response.text)
    # Applying what is not approved is a conflict, not a 500.
    response = await api.post(f"/v1/config/patches/{patch['id']}/apply", headers=boss)
    assert response.status_code == 409 and response.json()["error"]["details"]["reason"] == (
        "pending"
    )


async def test_auto_approve_and_the_rate_budget_hold_for_every_proposer(
    api, settings, services
) -> None:
    user_id, headers = await member(api)
    policy = await artifact(api, headers)
    auto = settings.model_copy(update={"configops_auto_approve_own": True})
    actor = Actor(user_id=user_id)
    proposal = Proposal(patch=copy.deepcopy(ADD_RULE), artifact_id=policy["id"])
    async with services.db.connection() as conn:
        patch = await propose(conn, proposal, proposer=Proposer.of(user_id, is_admin=False),
                              actor=actor, redis=services.redis, settings=auto)  # fmt: skip
    assert patch.status == "applying" and patch.decided_by == user_id
    assert "auto-approved" in (patch.decision_reason or "")
    await deliver(services, patch.id)
    assert (await patch_of(api, headers, patch.id))["applied_version"] == 2
    # The budget is the service's: one proposal an hour leaves none for the next.
    tight = settings.model_copy(update={"rate_configops_per_hour": 1})
    other_id, _ = await member(api)
    proposer = Proposer.of(other_id, is_admin=True)
    again = Proposal(patch=[{"op": "remove", "path": "/rules/1"}], artifact_id=policy["id"])
    async with services.db.connection() as conn:
        await propose(conn, again, proposer=proposer, actor=actor, redis=services.redis,
                      settings=tight)  # fmt: skip
        with pytest.raises(RateLimited):
            await propose(conn, again, proposer=proposer, actor=actor, redis=services.redis,
                          settings=tight)  # fmt: skip
    # The system's proposals spend the budget too, under the subject "system".
    key = "rate:configops:system"
    before = float(await services.redis.get(key) or 0)
    async with services.db.connection() as conn:
        made = await propose(conn, again, proposer=Proposer.system(), actor=Actor(),
                             redis=services.redis, settings=settings)  # fmt: skip
    assert made.proposer == "system_llm" and made.proposed_by is None
    assert float(await services.redis.get(key) or 0) > before
    # Approved and applied, the model's text is recorded as the model's on the version.
    await approved_and_applying(api, await admin(api, settings), made.id)
    await deliver(services, made.id)
    newest = (await versions(api, headers, policy["id"]))[0]
    assert (newest["version"], newest["created_by"]) == (3, "llm")


async def test_a_patch_whose_apply_keeps_failing_is_failed_not_left_applying(
    api, settings, services
) -> None:
    _, headers = await member(api)
    boss = await admin(api, settings)
    policy = await artifact(api, headers)
    patch = await proposed(api, headers, artifact_id=policy["id"], patch=ADD_RULE)
    await approved_and_applying(api, boss, patch["id"])
    async with services.db.connection() as conn:  # what the handler does on the last receive
        await give_up(conn, patch["id"], "OperationalError: the database went away")
        await give_up(conn, patch["id"], "a second time changes nothing")
    failed = await patch_of(api, headers, patch["id"])
    assert failed["status"] == "failed"
    assert failed["failure_reason"].endswith("OperationalError: the database went away")
    await deliver(services, patch["id"])  # a late delivery finds it failed: no version
    assert [v["version"] for v in await versions(api, headers, policy["id"])] == [1]
    # A message that is no apply request fails validation (the batch sends it to the DLQ).
    with pytest.raises(pydantic.ValidationError):
        await handle(record(0), services=services)
