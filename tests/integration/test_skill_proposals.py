"""The system's own skill proposals, pruning and merging on the real stack (issue 20 items 4
and 5, SPEC §7.3-7.4): clusters and skill adapters are seeded in SQL, the reviews run, and
exactly the qualifying ones get ConfigOps patches proposed by `system_llm` — valid, pending,
never applied — and a second review proposes nothing again. The admin route runs both."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np
import pytest
from psycopg.types.json import Jsonb

from functions.cluster import main as cluster_main
from shared.domain.configops import pruning, skills
from shared.platform.runtime.asgi import function_app
from tests.integration.configkit import admin, member

pytestmark = pytest.mark.integration

# The defaults, spelt out; the "system" configops budget is the session's: room for all.
THRESHOLDS = {"skill_min_size": 20, "skill_min_positive": 10, "skill_min_positive_share": 0.6,
              "prune_max_usage": 5, "prune_max_success": 0.0, "prune_idle_days": 30,
              "merge_min_similarity": 0.9,
              "rate_configops_per_hour": 100_000}  # fmt: skip


@pytest.fixture
def roomy(settings):
    return settings.model_copy(update=THRESHOLDS)


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=384)
    return v / np.linalg.norm(v)


def _near(base: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector with exactly `cosine` to the unit `base`."""
    other = rng.normal(size=384)
    other -= other.dot(base) * base
    other /= np.linalg.norm(other)
    return cosine * base + np.sqrt(1 - cosine**2) * other


def _vector(v: np.ndarray) -> str:
    return str([float(x) for x in v])


async def _fetch(services, sql: str, *params: Any) -> list[tuple]:
    async with services.db.connection() as conn:
        return list(await (await conn.execute(sql, params)).fetchall())


async def _cluster(
    services, user_id: str | None, size: int, positive: int, *, retired: bool = False,
    label: str = "sql, joins, index", labeled_by: str = "keywords",
    centroid: np.ndarray | None = None,
) -> str:  # fmt: skip
    centroid = centroid if centroid is not None else _unit(np.random.default_rng())
    rows = await _fetch(
        services,
        "INSERT INTO semantic_cluster (user_id, scope, centroid, size, positive_count,"
        " negative_count, label, labeled_by, keywords, retired_at) VALUES (%s, %s, %s::vector,"
        " %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END) RETURNING id::text",
        user_id, "user" if user_id else "global", _vector(centroid), size, positive,
        size - positive, label, labeled_by, ["sql", "joins", "index"], retired,
    )  # fmt: skip
    return rows[0][0]


async def _skill(services, owner: str | None, *, centroid: np.ndarray, usage: int = 0,
                 success: float | None = None, age_days: int = 0, used_days_ago: int | None = None,
                 weights: bool = True, status: str = "active") -> str:  # fmt: skip
    """A skill adapter as ConfigOps and training leave one: bound to its own cluster, served at
    version 2 (with weights, unless `weights` is off), with its router state."""
    cluster_id = await _cluster(services, owner, 25, 20, centroid=centroid)
    schema = {"kind": "adapter.lora", "adapter_type": "skill", "cluster_id": cluster_id,
              "status": status, "applicability": {"natural_language": "Skill: sql"}}  # fmt: skip
    if weights:
        schema |= {"mode": "local", "fs_dir": f"adapters/{cluster_id}/2", "checksum": "c0ffee"}
    rows = await _fetch(
        services,
        "INSERT INTO artifact (owner_user_id, type, name, schema, visibility, version,"
        " created_at) VALUES (%s, 'adapter.lora', %s, %s, %s, 2,"
        " now() - make_interval(days => %s)) RETURNING id::text",
        owner, f"skill-{uuid.uuid4().hex[:8]}", Jsonb(schema),
        "private" if owner else "global", age_days,
    )  # fmt: skip
    adapter_id = rows[0][0]
    await _fetch(
        services,
        "INSERT INTO artifact_version (artifact_id, version, schema, created_by) SELECT id,"
        " v, schema, 'system' FROM artifact, generate_series(1, 2) v WHERE id = %s RETURNING 1",
        adapter_id,
    )  # fmt: skip
    await _fetch(
        services,
        "INSERT INTO adapter_router_state (artifact_id, centroid_vec, usage_count,"
        " success_score, last_used_at) VALUES (%s, %s::vector, %s, %s,"
        " now() - make_interval(days => %s)) RETURNING 1",
        adapter_id, _vector(centroid), usage, success, used_days_ago,
    )  # fmt: skip
    return adapter_id


async def _creates(services, cluster_ids: list[str]) -> list[tuple]:
    return await _fetch(
        services,
        "SELECT meta->>'cluster_id', proposer, status, patch, new_name, new_visibility,"
        " owner_user_id::text, validation FROM config_patch WHERE kind = 'adapter.lora'"
        " AND artifact_id IS NULL AND meta->>'cluster_id' = ANY(%s) ORDER BY id",
        cluster_ids,
    )  # fmt: skip


async def _changes(services, adapter_ids: list[str]) -> list[tuple]:
    return await _fetch(
        services,
        "SELECT artifact_id::text, proposer, status, patch, base_version, validation,"
        " justification FROM config_patch WHERE artifact_id = ANY(%s::uuid[]) ORDER BY id",
        adapter_ids,
    )  # fmt: skip


def _ops(cluster_id: str, label: str, description: str) -> list[dict]:
    return [
        {"op": "add", "path": "/adapter_type", "value": "skill"},
        {"op": "add", "path": "/cluster_id", "value": cluster_id},
        {"op": "add", "path": "/status", "value": "active"},
        {"op": "add", "path": "/applicability",
         "value": {"natural_language": f"Skill: {label} \u2013 {description}"}},
    ]  # fmt: skip


async def test_only_large_well_liked_unbound_clusters_get_a_skill_proposal(
    api, services, roomy
) -> None:
    user_id, _ = await member(api)
    qualifies = await _cluster(services, user_id, 20, 12)  # exactly at every threshold
    named = await _cluster(services, user_id, 40, 30, label="SQL tuning", labeled_by="model")
    await _cluster(services, user_id, 19, 19)  # one short of SKILL_MIN_SIZE
    await _cluster(services, user_id, 30, 9)  # one short of SKILL_MIN_POSITIVE
    await _cluster(services, user_id, 30, 17)  # a positive share of 0.57
    retired = await _cluster(services, user_id, 40, 40, retired=True)
    bound = await _skill(services, user_id, centroid=_unit(np.random.default_rng(5)))
    (bound_cluster,) = (await _fetch(services, "SELECT schema->>'cluster_id' FROM artifact"
                                     " WHERE id = %s", bound))[0]  # fmt: skip

    report = await skills.review(services.db, scope=user_id, redis=services.redis,
                                 settings=roomy)  # fmt: skip
    assert (report.scope, report.user_id, report.considered) == ("user", user_id, 6)
    assert (report.qualified, report.proposed, report.pending) == (2, 2, 2), report
    assert report.skipped == {"too small": 1, "too few positive": 1,
                              "positive share too low": 1, "has an adapter": 1}  # fmt: skip
    made = await _creates(services, [qualifies, named, retired, bound_cluster])
    assert [m[0] for m in made] == [named, qualifies]  # the larger first
    for cluster_id, proposer, status, _, _, visibility, owner, validation in made:
        assert (proposer, status, visibility, owner) == ("system_llm", "pending", "private",
                                                         user_id), cluster_id  # fmt: skip
        assert validation == {"ok": True, "problems": []}
    assert made[0][3] == _ops(named, "SQL tuning", "Answers about sql, joins, index.")
    assert made[0][4] == f"skill-sql-tuning-{named[:8]}"
    assert made[1][3] == _ops(qualifies, "sql, joins, index", "Answers about sql, joins, index.")
    # Proposed, never applied: no adapter serves the clusters.
    assert await _fetch(services, "SELECT 1 FROM artifact WHERE schema->>'cluster_id' = ANY(%s)",
                        [qualifies, named]) == []  # fmt: skip
    audited = await _fetch(services, "SELECT details->'patch_ids' FROM audit_event WHERE"
                           " event = 'configops.skill_review' AND subject_user_id = %s",
                           user_id)  # fmt: skip
    assert audited == [(report.patch_ids,)]

    again = await skills.review(services.db, scope=user_id, redis=services.redis,
                                settings=roomy)  # fmt: skip
    assert (again.qualified, again.proposed) == (0, 0)
    assert again.skipped["a proposal is open"] == 2
    assert len(await _creates(services, [qualifies, named])) == 2


async def test_idle_skills_are_proposed_for_disabling_and_near_twins_for_merging(
    api, services, roomy
) -> None:
    user_id, _ = await member(api)
    other_id, _ = await member(api)
    rng = np.random.default_rng()
    idle = await _skill(services, user_id, centroid=_unit(rng), usage=2, age_days=60)
    busy = await _skill(services, user_id, centroid=_unit(rng), usage=5, age_days=60)
    used = await _skill(services, user_id, centroid=_unit(rng), age_days=60, used_days_ago=2)
    young = await _skill(services, user_id, centroid=_unit(rng), age_days=3)
    disabled = await _skill(services, user_id, centroid=_unit(rng), age_days=60,
                            status="disabled")  # fmt: skip
    base = _unit(rng)
    strong = await _skill(services, user_id, centroid=base, usage=50, success=0.5)
    weak = await _skill(services, user_id, centroid=_near(base, 0.95, rng), usage=20,
                        success=0.1)  # fmt: skip
    elsewhere = await _skill(services, other_id, centroid=_near(base, 0.96, rng), usage=9)
    apart = await _skill(services, user_id, centroid=_near(base, 0.85, rng), usage=9)
    untrained = await _skill(services, user_id, centroid=_near(base, 0.97, rng), usage=9,
                             weights=False)  # fmt: skip
    mine = [idle, busy, used, young, disabled, strong, weak, elsewhere, apart, untrained]

    report = await pruning.review(services.db, redis=services.redis, settings=roomy)
    assert idle in report.disable and not {busy, used, young, disabled} & set(report.disable)
    merged = [m for m in report.merges if {m["source"], m["into"]} & set(mine)]
    assert merged == [{"source": weak, "into": strong, "similarity": pytest.approx(0.95, abs=1e-3)}]
    proposed = await _changes(services, mine)
    assert [(p[0], p[3]) for p in proposed] == [
        (idle, [{"op": "add", "path": "/status", "value": "disabled"}]),
        (weak, [{"op": "add", "path": "/status", "value": "disabled"},
                {"op": "add", "path": "/merged_into", "value": strong}]),
    ]  # fmt: skip
    for _, proposer, status, _, base_version, validation, _ in proposed:
        assert (proposer, status, base_version) == ("system_llm", "pending", 2)
        assert validation == {"ok": True, "problems": []}
    assert "2 uses" in proposed[0][6] and "30 days" in proposed[0][6]
    assert "0.95" in proposed[1][6] and "50 uses" in proposed[1][6]
    # Proposed, never applied: every adapter is as it was.
    statuses = await _fetch(services, "SELECT id::text, schema->>'status', version FROM artifact"
                            " WHERE id = ANY(%s::uuid[])", mine)  # fmt: skip
    assert {(i, s, v) for i, s, v in statuses} == {
        (i, "disabled" if i == disabled else "active", 2) for i in mine
    }

    again = await pruning.review(services.db, redis=services.redis, settings=roomy)
    assert idle not in again.disable
    assert not any({m["source"], m["into"]} & set(mine) for m in again.merges)
    assert len(await _changes(services, mine)) == 2


async def test_new_feedback_in_its_cluster_keeps_an_idle_skill(api, services, roomy) -> None:
    user_id, _ = await member(api)
    quiet = await _skill(services, user_id, centroid=_unit(np.random.default_rng()), age_days=60)
    (cluster_id,) = (await _fetch(services, "SELECT schema->>'cluster_id' FROM artifact"
                                  " WHERE id = %s", quiet))[0]  # fmt: skip
    conversation = (await _fetch(services, "INSERT INTO conversation (user_id) VALUES (%s)"
                                 " RETURNING id::text", user_id))[0][0]  # fmt: skip
    message = (await _fetch(services, "INSERT INTO message (conversation_id, sender, role,"
                            " content, seq) VALUES (%s, 'assistant', 'assistant', 'ok', 1)"
                            " RETURNING id::text", conversation))[0][0]  # fmt: skip
    await _fetch(
        services,
        "WITH e AS (INSERT INTO preference_event (user_id, conversation_id, message_id,"
        " explicit_signal, context_embedding) VALUES (%s, %s, %s, 'like', %s::vector)"
        " RETURNING id) INSERT INTO cluster_event (event_id, scope, cluster_id, similarity)"
        " SELECT id, 'user', %s, 0.9 FROM e RETURNING 1",
        user_id, conversation, message, _vector(_unit(np.random.default_rng())), cluster_id,
    )  # fmt: skip
    report = await pruning.review(services.db, redis=services.redis, settings=roomy)
    assert quiet not in report.disable
    assert await _changes(services, [quiet]) == []


async def test_the_admin_route_reviews_every_scope_now(
    api, settings, services, roomy, monkeypatch
) -> None:
    monkeypatch.setattr(services, "settings", roomy)
    user_id, headers = await member(api)
    boss = await admin(api, settings)
    shared = await _cluster(services, None, 30, 25)
    own = await _cluster(services, user_id, 20, 20)
    short = await _cluster(services, None, 19, 19)

    refused = await api.post("/v1/admin/skills/review", headers=headers)
    assert refused.status_code == 403, refused.text
    done = await api.post("/v1/admin/skills/review", headers=boss)
    assert done.status_code == 200, done.text
    data = done.json()["data"]
    assert data["skills"]["scope"] == "all" and data["skills"]["rate_limited"] == 0
    assert {"considered", "disable", "merges", "patch_ids"} <= set(data["pruning"])
    made = await _creates(services, [shared, own, short])
    assert [(m[0], m[5], m[6]) for m in made] == [
        (shared, "global", None), (own, "private", user_id),
    ]  # fmt: skip
    assert {m[2] for m in made} == {"pending"}
    patch_ids = await _fetch(services, "SELECT id FROM config_patch WHERE meta->>'cluster_id'"
                             " = ANY(%s) ORDER BY id", [shared, own])  # fmt: skip
    assert {p[0] for p in patch_ids} <= set(data["skills"]["patch_ids"])


async def _no_runs(services, user_ids, key) -> int:
    return 0


async def test_the_hourly_schedule_proposes_disabling_an_idle_skill(
    api, services, roomy, monkeypatch
) -> None:
    monkeypatch.setattr(services, "settings", roomy)
    user_id, _ = await member(api)
    idle = await _skill(services, user_id, centroid=_unit(np.random.default_rng()), age_days=60)
    # Queueing the hour's runs is tests/integration/test_clusters.py's to check (its dedup keys
    # are per hour: queueing them here would leave that test nothing to queue).
    monkeypatch.setattr(cluster_main, "_queue", _no_runs)
    app = function_app(cluster_main, services)  # what the scheduler calls
    tick = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        done = await client.post("/events", json=tick)
    assert done.status_code == 200, done.text
    assert done.json()["data"]["skill_review"]["proposed"] >= 1
    proposed = await _changes(services, [idle])
    assert [(p[1], p[2], p[3]) for p in proposed] == [
        ("system_llm", "pending", [{"op": "add", "path": "/status", "value": "disabled"}]),
    ]
