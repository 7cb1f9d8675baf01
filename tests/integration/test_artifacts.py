"""Artifacts through the gateway on the real Postgres: kinds, versions, validation, tenancy."""

from __future__ import annotations

import asyncio
import copy
import uuid

import pytest

from infra.admin import promote
from tests.integration.authkit import bearer, sign_up

pytestmark = pytest.mark.integration

WORKFLOW = {
    "kind": "workflow.chat",
    "entrypoint": "classify",
    "timeout_ms": 60000,
    "nodes": [
        {"id": "classify", "type": "tool_call", "tool": "llm.intent_classifier_v1",
         "inputs": {"message": "${input.message}"}, "outputs": ["intent"], "next": "route"},
        {"id": "route", "type": "switch", "branches": [
            {"when": "intent in ['qa', 'analysis']", "next": "plain"},
            {"when": "true", "next": "plain"}]},
        {"id": "plain", "type": "tool_call", "tool": "llm.generic_chat_v1",
         "inputs": {"message": "${input.message}"}, "next": "end"},
        {"id": "end", "type": "end"},
    ],
}  # fmt: skip
POLICY = {
    "kind": "policy.routing",
    "name": "mine",
    "max_active_adapters": 2,
    "rules": [
        {"id": "persona", "when": "true",
         "action": {"type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.5}},
        {"id": "risky", "when": "safety_risk == 'high'",
         "action": {"type": "deactivate_all_adapters"}},
    ],
}  # fmt: skip
TOOL = {
    "kind": "tool.spec",
    "name": "demo.echo_v1",
    "description": "Echo.",
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "output_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "timeout_ms": 2000,
}
KNOWLEDGE = {"kind": "context.knowledge", "name": "docs", "chunk_tokens": 300, "pii_scrub": True}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _create(api, headers: dict, schema: dict, **extra):
    body = {"name": _name(schema["kind"]), "schema": schema, **extra}
    return await api.post("/v1/artifacts", headers=headers, json=body)


async def _admin(api, settings) -> dict:
    signed = await sign_up(api)
    await promote(settings, signed["user"]["email"])
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]})
    return {**signed, "access_token": refreshed.json()["data"]["access_token"]}


async def _all(api, headers: dict, **params) -> list[dict]:
    """Every page of the list."""
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/artifacts", headers=headers, params=query)).json()["data"]
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


def _paths(response) -> list[str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    return [d["path"] for d in error["details"]]


async def test_each_user_kind_is_created_at_version_1(api) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    conversation = (await api.post("/v1/conversations", headers=headers, json={})).json()["data"]
    memory = {
        "kind": "memory.summary", "conversation_id": conversation["id"],
        "summary": "They talked about Lyon.", "covers_until_seq": 4, "token_count": 6,
    }  # fmt: skip
    for schema in (WORKFLOW, POLICY, TOOL, KNOWLEDGE, memory):
        made = await _create(api, headers, schema, type=schema["kind"], description="d")
        assert made.status_code == 201, made.text
        data = made.json()["data"]
        assert (data["type"], data["version"], data["owner"]) == (schema["kind"], 1, "me")
        assert data["schema"] == schema and data["visibility"] == "private"
        got = await api.get(f"/v1/artifacts/{data['id']}", headers=headers)
        assert got.json()["data"] == data
        versions = await api.get(f"/v1/artifacts/{data['id']}/versions", headers=headers)
        assert [v["version"] for v in versions.json()["data"]["items"]] == [1]
    other = await sign_up(api)
    foreign = {**memory, "conversation_id": str(uuid.uuid4())}
    assert _paths(await _create(api, bearer(other["access_token"]), foreign)) == [
        "/conversation_id"
    ]
    mismatch = await _create(api, headers, TOOL, type="workflow.chat")
    assert _paths(mismatch) == ["/kind"]


async def test_json_patch_versions_and_stale_base_version(api) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    made = (await _create(api, headers, WORKFLOW)).json()["data"]
    path = f"/v1/artifacts/{made['id']}"
    patch = [{"op": "replace", "path": "/timeout_ms", "value": 90000},
             {"op": "add", "path": "/nodes/2/max_retries", "value": 2}]  # fmt: skip
    patched = await api.patch(
        path, headers=headers, json={"patch": patch, "change_note": "slower", "base_version": 1}
    )
    assert patched.status_code == 200, patched.text
    second = patched.json()["data"]
    assert second["version"] == 2 and second["schema"]["timeout_ms"] == 90000
    assert second["schema"]["nodes"][2]["max_retries"] == 2
    versions = (await api.get(f"{path}/versions", headers=headers)).json()["data"]["items"]
    assert [(v["version"], v["created_by"]) for v in versions] == [(2, "user"), (1, "user")]
    assert versions[0]["schema"] == second["schema"] and versions[1]["schema"] == WORKFLOW
    assert versions[0]["change_note"] == "slower"
    one = (await api.get(f"{path}/versions/1", headers=headers)).json()["data"]
    assert one["schema"] == WORKFLOW and one["version"] == 1
    assert (await api.get(f"{path}/versions/3", headers=headers)).status_code == 404
    assert (await api.get(f"{path}/versions/x", headers=headers)).status_code == 404
    page = (await api.get(f"{path}/versions", headers=headers, params={"limit": 1})).json()
    rest = await api.get(
        f"{path}/versions", headers=headers, params={"cursor": page["data"]["next_cursor"]}
    )
    assert [v["version"] for v in rest.json()["data"]["items"]] == [1]

    stale = await api.patch(path, headers=headers, json={"patch": patch, "base_version": 1})
    assert stale.status_code == 409
    assert stale.json()["error"]["details"]["reason"] == "stale_version"
    renamed = await api.patch(path, headers=headers, json={"name": "renamed", "base_version": 2})
    assert renamed.json()["data"]["name"] == "renamed"
    assert renamed.json()["data"]["version"] == 2  # metadata only: no new schema version
    whole = copy.deepcopy(WORKFLOW)
    whole["nodes"][3]["description"] = "done"
    replaced = await api.patch(path, headers=headers, json={"schema": whole})
    assert replaced.json()["data"]["version"] == 3
    assert replaced.json()["data"]["schema"] == whole
    bad_op = await api.patch(
        path, headers=headers, json={"patch": [{"op": "remove", "path": "/nodes/9"}]}
    )
    assert _paths(bad_op) == ["/nodes/9"]


async def test_invalid_schemas_are_refused_with_pointer_paths_and_write_nothing(api) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    workflow = (await _create(api, headers, WORKFLOW)).json()["data"]
    policy = (await _create(api, headers, POLICY)).json()["data"]
    cases = [
        (workflow, [{"op": "replace", "path": "/nodes/2/type", "value": "shell"}],
         ["/nodes/2/type"]),
        (workflow, [{"op": "replace", "path": "/nodes/0/next", "value": "nowhere"}],
         ["/nodes/0/next"]),
        (workflow, [{"op": "replace", "path": "/entrypoint", "value": "missing"}],
         ["/entrypoint"]),
        (workflow, [{"op": "replace", "path": "/nodes/2/tool", "value": "no.such_tool_v1"}],
         ["/nodes/2/tool"]),
        (workflow, [{"op": "replace", "path": "/nodes/1/branches/0/when",
                     "value": "intent.__class__ == 1"}], ["/nodes/1/branches/0/when"]),
        (workflow, [{"op": "add", "path": "/nodes/-", "value": {"id": "end", "type": "end"}}],
         ["/nodes/4/id"]),
        (policy, [{"op": "replace", "path": "/rules/1/when", "value": "2 ** 99999 > 1"}],
         ["/rules/1/when"]),
        (policy, [{"op": "add", "path": "/rules/-", "value": {
            "id": "pin", "when": "true",
            "action": {"type": "activate_adapter_by_id", "adapter_id": str(uuid.uuid4())}}}],
         ["/rules/2/action/adapter_id"]),
        (policy, [{"op": "replace", "path": "/kind", "value": "workflow.chat"}], ["/kind"]),
    ]  # fmt: skip
    for artifact, patch, expected in cases:
        path = f"/v1/artifacts/{artifact['id']}"
        response = await api.patch(path, headers=headers, json={"patch": patch})
        assert _paths(response) == expected, (patch, response.text)
        after = (await api.get(path, headers=headers)).json()["data"]
        assert after["version"] == 1 and after["schema"] == artifact["schema"]
    when = f"/v1/artifacts/{policy['id']}/versions"
    assert len((await api.get(when, headers=headers)).json()["data"]["items"]) == 1
    tool = {**TOOL, "input_schema": {"type": "object", "properties": {"x": {"type": 3}}}}
    assert _paths(await _create(api, headers, tool)) == ["/input_schema/properties/x/type"]
    listed = await api.get("/v1/artifacts", headers=headers, params={"owner": "me"})
    assert len(listed.json()["data"]["items"]) == 2  # the refused create wrote nothing


async def test_names_are_unique_per_owner_and_kind(api) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    body = {"name": "same", "schema": TOOL}
    assert (await api.post("/v1/artifacts", headers=headers, json=body)).status_code == 201
    again = await api.post("/v1/artifacts", headers=headers, json=body)
    assert again.status_code == 409
    assert again.json()["error"]["details"]["reason"] == "duplicate"
    other = await api.post("/v1/artifacts", headers=headers, json={**body, "schema": KNOWLEDGE})
    assert other.status_code == 201  # another kind
    second = (await api.post("/v1/artifacts", headers=headers, json={**body, "name": "b"})).json()
    clash = await api.patch(
        f"/v1/artifacts/{second['data']['id']}", headers=headers, json={"name": "same"}
    )
    assert clash.status_code == 409 and clash.json()["error"]["details"]["reason"] == "duplicate"


async def test_an_idempotency_key_replays_the_first_create(api) -> None:
    user = await sign_up(api)
    headers = {**bearer(user["access_token"]), "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": _name("tool"), "schema": TOOL}
    first = await api.post("/v1/artifacts", headers=headers, json=body)
    again = await api.post("/v1/artifacts", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json()["data"] == first.json()["data"]
    other = await api.post("/v1/artifacts", headers=headers, json={**body, "name": "other"})
    assert other.status_code == 409 and other.json()["error"]["details"]["reason"] == "key_reused"
    mine = await api.get("/v1/artifacts", headers=headers, params={"owner": "me"})
    assert len(mine.json()["data"]["items"]) == 1


async def test_list_filters(api) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    workflow = (await _create(api, headers, WORKFLOW)).json()["data"]
    tool = (await _create(api, headers, TOOL, visibility="shared")).json()["data"]

    async def ids(**params) -> list[str]:
        response = await api.get("/v1/artifacts", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["data"]["items"]]

    assert await ids(owner="me") == [tool["id"], workflow["id"]]
    assert await ids(owner="me", type="workflow") == [workflow["id"]]
    assert await ids(owner="me", type="workflow.chat") == [workflow["id"]]
    assert await ids(owner="me", type="work") == []
    assert await ids(owner="me", visibility="shared") == [tool["id"]]
    seeded = await _all(api, headers, owner="global")
    names = {(i["type"], i["name"]) for i in seeded}
    assert {
        ("workflow.chat", "default_chat"), ("policy.routing", "default_user_routing"),
        ("tool.spec", "llm.generic_chat_v1"), ("tool.spec", "memory.summarize_v1"),
    } <= names  # fmt: skip
    assert all(i["owner"] == "global" and i["visibility"] == "global" for i in seeded)
    tools = await api.get("/v1/artifacts", headers=headers, params={"type": "tool", "limit": 100})
    assert {i["type"] for i in tools.json()["data"]["items"]} == {"tool.spec"}
    seen = [i["id"] for i in await _all(api, headers, limit=7)]
    assert len(seen) == len(set(seen)) and {workflow["id"], tool["id"]} <= set(seen)
    for bad in ({"owner": "them"}, {"cursor": "!!"}, {"visibility": "public"}):
        assert (await api.get("/v1/artifacts", headers=headers, params=bad)).status_code == 400


async def test_tenancy_sharing_and_roles(api, settings) -> None:
    a, b = await sign_up(api), await sign_up(api)
    ha, hb = bearer(a["access_token"]), bearer(b["access_token"])
    tool = {**TOOL, "name": f"demo.only_{uuid.uuid4().hex[:8]}"}  # no other test's shared one
    private = (await _create(api, ha, tool)).json()["data"]
    for path in (f"/v1/artifacts/{private['id']}", f"/v1/artifacts/{private['id']}/versions",
                 f"/v1/artifacts/{private['id']}/versions/1"):  # fmt: skip
        assert (await api.get(path, headers=hb)).status_code == 404
    # B's workflow cannot name A's private tool; it can once A shares it.
    uses = {"kind": "workflow.chat", "entrypoint": "t",
            "nodes": [{"id": "t", "type": "tool_call", "tool": tool["name"]}]}  # fmt: skip
    assert _paths(await _create(api, hb, uses)) == ["/nodes/0/tool"]
    # A shared artifact cannot lean on a private one of its owner: others could not run it.
    assert _paths(await _create(api, ha, uses, visibility="shared")) == ["/nodes/0/tool"]
    shared = await api.patch(f"/v1/artifacts/{private['id']}", headers=ha,
                             json={"visibility": "shared"})  # fmt: skip
    assert shared.json()["data"]["visibility"] == "shared"
    assert (await _create(api, hb, uses)).status_code == 201
    seen = (await api.get(f"/v1/artifacts/{private['id']}", headers=hb)).json()["data"]
    assert seen["owner"] == "shared" and a["user"]["id"] not in str(seen)
    versions = await api.get(f"/v1/artifacts/{private['id']}/versions", headers=hb)
    assert versions.status_code == 200
    for method, body in (("PATCH", {"description": "mine now"}), ("DELETE", None)):
        refused = await api.request(method, f"/v1/artifacts/{private['id']}", headers=hb, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
    seeded = (await api.get("/v1/artifacts", headers=hb, params={"owner": "global"})).json()
    system = seeded["data"]["items"][0]["id"]
    assert (await api.patch(f"/v1/artifacts/{system}", headers=hb, json={})).status_code == 403

    assert (await _create(api, ha, TOOL, visibility="global")).status_code == 403
    made_global = await api.patch(f"/v1/artifacts/{private['id']}", headers=ha,
                                  json={"visibility": "global"})  # fmt: skip
    assert made_global.status_code == 403
    admin = await _admin(api, settings)
    published = await _create(api, bearer(admin["access_token"]), TOOL, visibility="global")
    assert published.status_code == 201 and published.json()["data"]["owner"] == "me"
    assert (await api.get(f"/v1/artifacts/{published.json()['data']['id']}", headers=hb)).json()[
        "data"]["owner"] == "global"  # fmt: skip
    privileged = await _create(api, ha, {**TOOL, "privileged": True})
    assert privileged.status_code == 403

    adapter = {"kind": "adapter.lora", "mode": "prompt", "prompt_instructions": "Be terse."}
    refused = await _create(api, ha, adapter)
    assert _paths(refused) == ["/kind"] and "training" in refused.json()["error"]["message"]
    deleted = await api.delete(f"/v1/artifacts/{private['id']}", headers=ha)
    assert deleted.status_code == 200
    assert (await api.get(f"/v1/artifacts/{private['id']}", headers=ha)).status_code == 404


async def test_concurrent_patches_get_consecutive_versions(api) -> None:
    user = await sign_up(api)
    headers = bearer(user["access_token"])
    made = (await _create(api, headers, TOOL)).json()["data"]
    path = f"/v1/artifacts/{made['id']}"

    async def patch(value: int):
        op = [{"op": "replace", "path": "/timeout_ms", "value": value}]
        return await api.patch(path, headers=headers, json={"patch": op})

    answers = await asyncio.gather(patch(3000), patch(4000))
    assert sorted(r.json()["data"]["version"] for r in answers) == [2, 3]
    versions = (await api.get(f"{path}/versions", headers=headers)).json()["data"]["items"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    final = (await api.get(path, headers=headers)).json()["data"]
    assert final["version"] == 3 and final["schema"] == versions[0]["schema"]


async def test_adapters_are_listed_renamed_referenced_and_deleted_with_their_files(
    api, adapters
) -> None:
    a, b = await sign_up(api), await sign_up(api)
    ha, hb = bearer(a["access_token"]), bearer(b["access_token"])
    record = await adapters.publish(a["user"]["id"], seed=5)
    path = f"/v1/artifacts/{record.adapter_id}"
    mine = (await api.get(path, headers=ha)).json()["data"]
    assert mine["type"] == "adapter.lora" and mine["schema"]["fs_dir"] == record.prefix
    listed = await _all(api, ha, owner="me", type="adapter")
    assert [i["id"] for i in listed] == [record.adapter_id]
    edit = [{"op": "replace", "path": "/prompt_instructions", "value": "Be terse."}]
    refused = await api.patch(path, headers=ha, json={"patch": edit})
    assert refused.status_code == 400 and "training" in refused.json()["error"]["message"]
    renamed = await api.patch(path, headers=ha, json={"name": "persona-a"})
    assert renamed.json()["data"]["name"] == "persona-a"
    assert renamed.json()["data"]["version"] == 1

    action = {"type": "activate_adapter_by_id", "adapter_id": record.adapter_id, "weight": 0.7}
    pin = {**POLICY, "rules": [{"id": "pin", "when": "true", "action": action}]}
    assert (await _create(api, ha, pin)).status_code == 201
    assert _paths(await _create(api, hb, pin)) == ["/rules/0/action/adapter_id"]
    shared = await api.patch(path, headers=ha, json={"visibility": "shared"})
    assert shared.status_code == 200
    theirs = (await api.get(path, headers=hb)).json()["data"]
    assert "fs_dir" not in theirs["schema"] and a["user"]["id"] not in str(theirs)
    assert (await _create(api, hb, pin)).status_code == 201

    assert (await api.delete(path, headers=ha)).status_code == 200
    assert (await api.get(path, headers=ha)).status_code == 404
    left = adapters.s3.list_objects_v2(Bucket=adapters.bucket, Prefix=record.prefix)
    assert left.get("KeyCount", 0) == 0
