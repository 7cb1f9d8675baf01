"""Skill adapters through ConfigOps on the real stack (issue 20 items 4-5): an admin (or the
system) proposes a skill for a live cluster; approved and applied by the apply-patch handler
(fed its SQS records in-process, as tests/integration/test_configops.py does), it is a
weightless adapter whose router state is the cluster's centroid, with its first skill
training job queued and sent. Invalid creates are refused and change nothing; a disabled
skill leaves the router's candidates and a rollback brings it back; a merge disables the
source and retrains the target on both clusters; weights are never ConfigOps' to write."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from psycopg.types.json import Jsonb

from shared.domain.adapters.registry import AdapterFiles, publish
from shared.domain.chat.sources import adapter_candidates
from shared.domain.configops.models import NewArtifact, Proposer
from shared.domain.configops.propose import Proposal, propose
from shared.domain.preferences.schedule import dedup_key
from shared.domain.routing.recorded import encode_vector
from shared.neural import peft
from shared.platform.audit import Actor
from tests.integration.configkit import (
    admin,
    approved_and_applying,
    deliver,
    member,
    patch_of,
    proposed,
    versions,
)
from tests.integration.configkit import propose as post_proposal
from tests.integration.conftest import adapter_weights

pytestmark = pytest.mark.integration


def _unit(seed: int) -> list[float]:
    vector = np.random.default_rng(seed).normal(size=384)
    return [float(x) for x in vector / np.linalg.norm(vector)]


async def _fetch(services, sql: str, *params: Any) -> list[tuple]:
    async with services.db.connection() as conn:
        return list(await (await conn.execute(sql, params)).fetchall())


async def _cluster(services, user_id: str | None, *, seed: int, retired: bool = False) -> str:
    rows = await _fetch(
        services,
        "INSERT INTO semantic_cluster (user_id, scope, centroid, size, label, retired_at)"
        " VALUES (%s, %s, %s::vector, 24, 'sql queries', CASE WHEN %s THEN now() END)"
        " RETURNING id::text",
        user_id, "user" if user_id else "global", str(_unit(seed)), retired,
    )  # fmt: skip
    return rows[0][0]


def _skill_ops(cluster_id: str, **extra: Any) -> list[dict]:
    schema = {"adapter_type": "skill", "cluster_id": cluster_id, "status": "active",
              "applicability": {"natural_language": "Skill: sql queries - writing SQL"},
              **extra}  # fmt: skip
    return [{"op": "add", "path": f"/{k}", "value": v} for k, v in schema.items()]


def _create(owner: str | None, visibility: str = "private", name: str = "") -> dict:
    return {"kind": "adapter.lora", "name": name or f"skill-{uuid.uuid4().hex[:8]}",
            "visibility": visibility, "owner_user_id": owner}  # fmt: skip


async def _applied(api, boss: dict, services, patch_id: int) -> dict:
    await approved_and_applying(api, boss, patch_id)
    await deliver(services, patch_id)
    done = await patch_of(api, boss, patch_id)
    assert done["status"] == "applied", done
    return done


async def _skill(api, boss, services, owner: str | None, cluster_id: str) -> dict:
    patch = await proposed(api, boss, create=_create(owner, "private" if owner else "global"),
                           patch=_skill_ops(cluster_id))  # fmt: skip
    assert patch["status"] == "pending", patch
    return await _applied(api, boss, services, patch["id"])


async def _trained(adapters, services, adapter_id: str, owner: str | None, seed: int) -> int:
    """A weight version served, as training publishes one (keeping the skill's binding), and
    the skill's jobs finished."""
    (schema,) = (await _fetch(services, "SELECT schema FROM artifact WHERE id = %s",
                              adapter_id))[0]  # fmt: skip
    kept = {k: schema[k] for k in ("cluster_id", "status", "applicability") if k in schema}
    record = await publish(
        adapters.pool, adapters.s3, adapters.bucket,
        AdapterFiles(*peft.dump_with_checksum(adapter_weights(seed))),
        owner_user_id=owner, name="ignored", adapter_id=adapter_id, adapter_type="skill",
        extra_schema=kept,
    )  # fmt: skip
    await _fetch(services, "UPDATE training_job SET status = 'succeeded' WHERE adapter_id = %s"
                 " AND status = 'queued' RETURNING id", adapter_id)  # fmt: skip
    return record.version


async def _candidate_ids(services, user_id: str) -> set[str]:
    async with services.db.connection() as conn:
        return {c.id for c in await adapter_candidates(conn, user_id)}


async def _patch_on(api, boss, services, adapter_id: str, **body: Any) -> dict:
    patch = await proposed(api, boss, artifact_id=adapter_id, **body)
    assert patch["status"] == "pending", patch
    return await _applied(api, boss, services, patch["id"])


async def test_an_admin_makes_a_weightless_skill_with_its_first_job(
    api, settings, services
) -> None:
    user_id, _ = await member(api)
    boss = await admin(api, settings)
    cluster_id = await _cluster(services, user_id, seed=1)
    # A recent turn of the user near the cluster: the dry-run counts it.
    conversation = (await _fetch(services, "INSERT INTO conversation (user_id) VALUES (%s)"
                                 " RETURNING id::text", user_id))[0][0]  # fmt: skip
    trace = {"router": {"adapters": []}, "inputs": {"routing": {"embedding":
             encode_vector(_unit(1))}}}  # fmt: skip
    await _fetch(services, "INSERT INTO message (conversation_id, sender, role, content, seq,"
                 " meta) VALUES (%s, 'assistant', 'assistant', 'ok', 1, %s) RETURNING id",
                 conversation, Jsonb({"trace": trace}))  # fmt: skip

    patch = await proposed(api, boss, create=_create(user_id), patch=_skill_ops(cluster_id))
    assert patch["status"] == "pending" and patch["validation"] == {"ok": True, "problems": []}
    assert patch["owner_user_id"] == user_id and patch["meta"] == {"cluster_id": cluster_id}
    dry = patch["dry_run"]
    assert (dry["change"], dry["scope"], dry["selected"], dry["would_offer"]) == (
        "create", "owner", 1, 1,
    ), dry  # fmt: skip
    # A second proposal for the cluster, while the first is open, is rejected with details.
    second = await proposed(api, boss, create=_create(user_id), patch=_skill_ops(cluster_id))
    assert second["status"] == "rejected"
    assert second["validation"]["problems"] == [{"path": "/cluster_id", "message":
        f"patch {patch['id']} creates a skill for this cluster already"}]  # fmt: skip

    await approved_and_applying(api, boss, patch["id"])
    await deliver(services, patch["id"], times=3)  # duplicate deliveries apply it once
    await deliver(services, patch["id"])
    done = await patch_of(api, boss, patch["id"])
    assert done["status"] == "applied" and done["applied_version"] == 1, done
    adapter_id = done["artifact_id"]
    job_id = done["meta"]["training_job_id"]
    rows = await _fetch(services, "SELECT owner_user_id::text, visibility, version, schema,"
                        " fs_path FROM artifact WHERE schema->>'cluster_id' = %s",
                        cluster_id)  # fmt: skip
    assert len(rows) == 1
    owner, visibility, version, schema, fs_path = rows[0]
    assert (owner, visibility, version, fs_path) == (user_id, "private", 1, None)
    assert schema["adapter_type"] == "skill" and "fs_dir" not in schema
    (created_by, note), = await _fetch(services, "SELECT created_by, change_note FROM"
                                       " artifact_version WHERE artifact_id = %s",
                                       adapter_id)  # fmt: skip
    assert (created_by, note) == ("user", f"config patch {patch['id']}: test")
    same = await _fetch(services, "SELECT s.centroid_vec = c.centroid FROM adapter_router_state"
                        " s, semantic_cluster c WHERE s.artifact_id = %s AND c.id = %s",
                        adapter_id, cluster_id)  # fmt: skip
    assert same == [(True,)]
    jobs = await _fetch(services, "SELECT id::text, kind, status, user_id::text,"
                        " cluster_ids::text[] FROM training_job WHERE adapter_id = %s",
                        adapter_id)  # fmt: skip
    assert jobs == [(job_id, "skill", "queued", user_id, [cluster_id])]
    sent = await _fetch(services, "SELECT queue, body, sent_at IS NOT NULL FROM outbox_message"
                        " WHERE dedup_key = %s", dedup_key(job_id, 1))  # fmt: skip
    assert sent == [("TrainQueue", {"job_id": job_id}, True)]
    # Untrained, it is no candidate of the user's turns yet.
    assert adapter_id not in await _candidate_ids(services, user_id)
    # Once bound, the cluster takes no second skill.
    third = await proposed(api, boss, create=_create(user_id), patch=_skill_ops(cluster_id))
    assert third["validation"]["problems"] == [{"path": "/cluster_id", "message":
        f"adapter {adapter_id} serves this cluster already"}]  # fmt: skip


async def test_the_system_proposes_a_global_skill(api, settings, services) -> None:
    cluster_id = await _cluster(services, None, seed=2)
    proposal = Proposal(patch=_skill_ops(cluster_id), justification="cluster is busy",
                        create=NewArtifact("adapter.lora", f"skill-{uuid.uuid4().hex[:8]}",
                                           "SQL", visibility="global"))  # fmt: skip
    roomy = settings.model_copy(update={"rate_configops_per_hour": 100_000})  # shared "system"
    async with services.db.connection() as conn:
        patch = await propose(conn, proposal, proposer=Proposer.system(), actor=Actor(),
                              redis=services.redis, settings=roomy)  # fmt: skip
    assert patch.status == "pending" and patch.validation == {"ok": True, "problems": []}
    assert patch.owner_user_id is None and patch.dry_run and patch.dry_run["scope"] == "all users"
    done = await _applied(api, await admin(api, settings), services, patch.id)
    rows = await _fetch(services, "SELECT a.owner_user_id, a.visibility, v.created_by,"
                        " j.user_id, j.cluster_ids::text[] FROM artifact a JOIN artifact_version"
                        " v ON v.artifact_id = a.id JOIN training_job j ON j.adapter_id = a.id"
                        " WHERE a.id = %s", done["artifact_id"])  # fmt: skip
    assert rows == [(None, "global", "llm", None, [cluster_id])]


async def test_invalid_creates_are_refused_and_change_nothing(api, settings, services) -> None:
    user_id, headers = await member(api)
    other_id, _ = await member(api)
    boss = await admin(api, settings)
    live = await _cluster(services, user_id, seed=3)
    retired = await _cluster(services, user_id, seed=4, retired=True)
    cases = [
        (_create(user_id), _skill_ops(live, fs_dir="x/1", checksum="sha256:0"), "/fs_dir"),
        (_create(user_id), _skill_ops(str(uuid.uuid4())), "/cluster_id"),  # unknown
        (_create(user_id), _skill_ops(retired), "/cluster_id"),
        (_create(other_id), _skill_ops(live), "/cluster_id"),  # another user's
        (_create(None, "global"), _skill_ops(live), "/cluster_id"),  # not global
        (_create(user_id), _skill_ops(live, adapter_type="persona"), "/adapter_type"),
        (_create(user_id), _skill_ops(live, status="disabled"), "/status"),
    ]
    for create, ops, path in cases:
        patch = await proposed(api, boss, create=create, patch=ops)
        assert patch["status"] == "rejected", (ops, patch)
        assert path in [p["path"] for p in patch["validation"]["problems"]], patch["validation"]
        assert patch["dry_run"] is None
    # A user may not create one at all, even for their own cluster: nothing is stored.
    refused = await post_proposal(api, headers, create=_create(user_id), patch=_skill_ops(live))
    assert refused.status_code == 403, refused.text
    assert await _fetch(services, "SELECT 1 FROM config_patch WHERE proposed_by = %s",
                        user_id) == []  # fmt: skip
    bound = await _fetch(services, "SELECT 1 FROM artifact WHERE schema->>'cluster_id' = ANY(%s)",
                         [live, retired])  # fmt: skip
    assert bound == []


async def test_disable_leaves_the_router_and_a_rollback_brings_it_back(
    api, settings, services, adapters
) -> None:
    user_id, headers = await member(api)
    boss = await admin(api, settings)
    skill = (await _skill(api, boss, services, user_id, await _cluster(services, user_id, seed=5)))[
        "artifact_id"
    ]
    trained = await _trained(adapters, services, skill, user_id, seed=11)
    assert trained == 2 and skill in await _candidate_ids(services, user_id)

    disabled = await _patch_on(
        api, boss, services, skill, patch=[{"op": "add", "path": "/status", "value": "disabled"}]
    )
    assert disabled["applied_version"] == 3 and disabled["base_version"] == 2
    assert skill not in await _candidate_ids(services, user_id)
    (served, schema, fs_path), = await _fetch(services, "SELECT version, schema, fs_path FROM"
                                              " artifact WHERE id = %s", skill)  # fmt: skip
    assert served == 3 and schema["status"] == "disabled" and schema["version"] == 2
    assert schema["fs_dir"] == fs_path and schema["checksum"]  # the served weights' fields stay
    # A patch that touches the weights is refused; so is a restore of the weightless version 1.
    for body in ({"patch": [{"op": "replace", "path": "/fs_dir", "value": "elsewhere"}]},
                 {"restore_version": 1}):  # fmt: skip
        refused = await proposed(api, boss, artifact_id=skill, **body)
        assert refused["status"] == "rejected", refused
        messages = {p["path"]: p["message"] for p in refused["validation"]["problems"]}
        assert messages["/fs_dir"].startswith(
            "training writes /fs_dir; ConfigOps may change only status, merged_into, applicability"
        )
    # The owner may switch their own skill on again (status alone), for an admin to decide;
    # anything else of it (its applicability, a merge) is an admin's call.
    wider = await proposed(
        api,
        headers,
        artifact_id=skill,
        patch=[
            {"op": "add", "path": "/applicability", "value": {"natural_language": "Skill: all"}}
        ],
    )
    assert wider["status"] == "rejected", wider
    assert [p["path"] for p in wider["validation"]["problems"]] == ["/applicability"]
    mine = await proposed(api, headers, artifact_id=skill, restore_version=2)
    assert mine["status"] == "pending" and mine["validation"]["ok"], mine
    declined = await api.post(
        f"/v1/config/patches/{mine['id']}/decide",
        headers=boss,
        json={"decision": "reject", "reason": "an admin will do it"},
    )
    assert declined.status_code == 200, declined.text
    # Rolled back to version 2 (the diff touches only status): offered again.
    back = await _patch_on(api, boss, services, skill, restore_version=2)
    assert back["applied_version"] == 4 and back["meta"] == {"restores_version": 2}
    assert skill in await _candidate_ids(services, user_id)
    listed = await versions(api, headers, skill)
    assert [v["version"] for v in listed] == [4, 3, 2, 1]
    assert listed[0]["schema"]["status"] == "active"


async def test_merge_disables_the_source_and_retrains_the_target_on_both(
    api, settings, services, adapters
) -> None:
    user_id, _ = await member(api)
    other_id, _ = await member(api)
    boss = await admin(api, settings)
    source_cluster = await _cluster(services, user_id, seed=6)
    target_cluster = await _cluster(services, user_id, seed=7)
    source = (await _skill(api, boss, services, user_id, source_cluster))["artifact_id"]
    target = (await _skill(api, boss, services, user_id, target_cluster))["artifact_id"]
    foreign = (
        await _skill(api, boss, services, other_id, await _cluster(services, other_id, seed=8))
    )["artifact_id"]
    await _trained(adapters, services, foreign, other_id, seed=13)

    def merge(into: str) -> dict:
        return {"patch": [{"op": "add", "path": "/status", "value": "disabled"},
                          {"op": "add", "path": "/merged_into", "value": into}]}  # fmt: skip

    # Into an untrained skill, another user's, or itself: refused.
    for into, said in ((target, "no weights"), (foreign, "another scope"),
                       (source, "merged into itself")):  # fmt: skip
        refused = await proposed(api, boss, artifact_id=source, **merge(into))
        assert refused["status"] == "rejected", refused
        assert any(said in p["message"] for p in refused["validation"]["problems"]), refused
    await _trained(adapters, services, target, user_id, seed=12)
    merged = await _patch_on(api, boss, services, source, **merge(target))
    job_id = merged["meta"]["training_job_id"]
    assert job_id and merged["dry_run"]["change"] == "merge"
    ((schema,),) = await _fetch(services, "SELECT schema FROM artifact WHERE id = %s", source)
    assert (schema["status"], schema["merged_into"]) == ("disabled", target)
    jobs = await _fetch(services, "SELECT adapter_id::text, kind, cluster_ids::text[] FROM"
                        " training_job WHERE id = %s", job_id)  # fmt: skip
    assert jobs == [(target, "skill", [target_cluster, source_cluster])]
    assert source not in await _candidate_ids(services, user_id)


async def test_a_cluster_retired_before_the_apply_fails_the_patch(api, settings, services) -> None:
    user_id, _ = await member(api)
    boss = await admin(api, settings)
    cluster_id = await _cluster(services, user_id, seed=9)
    patch = await proposed(api, boss, create=_create(user_id), patch=_skill_ops(cluster_id))
    assert patch["status"] == "pending", patch
    await approved_and_applying(api, boss, patch["id"])
    await _fetch(services, "UPDATE semantic_cluster SET retired_at = now() WHERE id = %s"
                 " RETURNING id", cluster_id)  # fmt: skip
    await deliver(services, patch["id"])
    failed = await patch_of(api, boss, patch["id"])
    assert failed["status"] == "failed" and failed["artifact_id"] is None, failed
    assert f"/cluster_id: cluster {cluster_id} is retired" in failed["failure_reason"]
    assert await _fetch(services, "SELECT 1 FROM artifact WHERE schema->>'cluster_id' = %s",
                        cluster_id) == []  # fmt: skip
    assert await _fetch(services, "SELECT 1 FROM training_job j JOIN artifact a ON"
                        " a.id = j.adapter_id WHERE a.schema->>'cluster_id' = %s",
                        cluster_id) == []  # fmt: skip
