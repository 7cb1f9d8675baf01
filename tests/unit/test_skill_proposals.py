"""The system's skill proposals (configops.skills) and its pruning and merging
(configops.pruning): which clusters and adapters qualify, and the patches made for them,
checked against ConfigOps' own rules for adapters. Pure: no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shared.domain.configops import adapter_patches as rules
from shared.domain.configops.pruning import (
    SkillRow,
    disable_proposal,
    idle,
    merge_proposal,
    merges,
)
from shared.domain.configops.skills import (
    ClusterRow,
    label_of,
    proposal_for,
    skill_description,
    skill_name,
    skip_reason,
)
from shared.domain.configops.validate import patched, shape_problems
from shared.platform.settings import Settings

SETTINGS = Settings(skill_min_size=20, skill_min_positive=10, skill_min_positive_share=0.6,
                    prune_max_usage=5, prune_max_success=0.0, prune_idle_days=30,
                    merge_min_similarity=0.9)  # fmt: skip
CLUSTER = "3f1c9a52-6f0e-4d7b-9a43-0c2b8f7e1d55"
USER = "0b9d7c1e-2a4f-4c3b-8e5d-6f7a8b9c0d1e"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=60)

GOOD = ClusterRow(id=CLUSTER, user_id=USER, size=20, positive_count=12, label="sql, joins",
                  labeled_by="keywords", description=None,
                  keywords=["sql", "joins", "index"])  # fmt: skip


# --- which clusters earn a skill --------------------------------------------------------------


def test_a_large_well_liked_unbound_cluster_qualifies() -> None:
    assert skip_reason(GOOD, SETTINGS) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"size": 19, "positive_count": 12}, "too small"),  # one short of SKILL_MIN_SIZE
        ({"positive_count": 9, "size": 20}, "too few positive"),
        ({"size": 30, "positive_count": 17}, "positive share too low"),  # 0.57 < 0.6
        ({"bound": True}, "has an adapter"),
        ({"open_patch": True}, "a proposal is open"),
        ({"declined": True}, "declined lately"),
    ],
)
def test_each_threshold_and_binding_is_respected(change: dict, reason: str) -> None:
    assert skip_reason(replace(GOOD, **change), SETTINGS) == reason


def test_the_share_threshold_is_inclusive() -> None:
    assert skip_reason(replace(GOOD, size=20, positive_count=12), SETTINGS) is None  # 0.6
    assert replace(GOOD, size=0, positive_count=0).positive_share == 0.0


def test_the_model_label_is_preferred_over_the_keywords() -> None:
    assert label_of(GOOD) == "sql, joins, index"
    named = replace(
        GOOD, label="SQL tuning", labeled_by="model", description="Faster queries. More."
    )
    assert label_of(named) == "SQL tuning"
    assert skill_description(named) == "Faster queries."
    assert skill_description(GOOD) == "Answers about sql, joins, index."
    bare = replace(GOOD, label=None, keywords=[])
    assert label_of(bare) == f"cluster {CLUSTER[:8]}"


def test_the_name_is_a_slug_of_the_label_and_the_cluster_id() -> None:
    named = replace(GOOD, label="SQL / Query Tuning!", labeled_by="model")
    assert skill_name(named) == f"skill-sql-query-tuning-{CLUSTER[:8]}"
    long = replace(GOOD, label="x" * 300, labeled_by="model")
    assert len(skill_name(long)) <= 60


def _schema_after(ops: list[dict]) -> dict:
    after, found = patched({"kind": rules.KIND}, ops)
    assert found == []
    return after


def test_a_users_cluster_gets_a_private_weightless_skill_of_theirs() -> None:
    proposal = proposal_for(GOOD, SETTINGS)
    assert proposal.create is not None and proposal.artifact_id is None
    assert (proposal.create.kind, proposal.create.visibility) == ("adapter.lora", "private")
    assert proposal.create.owner_user_id == USER
    assert proposal.patch == [
        {"op": "add", "path": "/adapter_type", "value": "skill"},
        {"op": "add", "path": "/cluster_id", "value": CLUSTER},
        {"op": "add", "path": "/status", "value": "active"},
        {"op": "add", "path": "/applicability",
         "value": {"natural_language": "Skill: sql, joins, index \u2013 Answers about sql,"
                                       " joins, index."}},
    ]  # fmt: skip
    after = _schema_after(proposal.patch)
    assert shape_problems(rules.KIND, after) == []  # its JSON Schema
    assert rules.create_shape_problems(after) == []  # ConfigOps' rules for a new adapter
    assert rules.scope_problems(USER, owner_user_id=USER, visibility="private") == []
    assert "20 events" in (proposal.justification or "")
    assert "0.60" in (proposal.justification or "")


def test_a_global_cluster_gets_a_global_ownerless_skill() -> None:
    proposal = proposal_for(replace(GOOD, user_id=None), SETTINGS)
    assert proposal.create is not None
    assert (proposal.create.visibility, proposal.create.owner_user_id) == ("global", None)
    assert rules.scope_problems(None, owner_user_id=None, visibility="global") == []


# --- pruning --------------------------------------------------------------------------------


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384)
    return v / np.linalg.norm(v)


def _near(base: np.ndarray, cosine: float, seed: int) -> tuple[float, ...]:
    """A unit vector with exactly `cosine` to the unit `base`."""
    other = np.random.default_rng(seed).normal(size=384)
    other -= other.dot(base) * base
    other /= np.linalg.norm(other)
    return tuple(float(x) for x in cosine * base + np.sqrt(1 - cosine**2) * other)


def _skill(ident: str, **fields) -> SkillRow:
    base = {"id": ident, "owner_user_id": USER, "version": 2, "created_at": LONG_AGO,
            "usage_count": 0, "success_score": None, "last_used_at": None,
            "last_event_at": None, "has_weights": True,
            "centroid": tuple(float(x) for x in _unit(sum(map(ord, ident))))}  # fmt: skip
    return SkillRow(**{**base, **fields})


def test_an_unused_unsuccessful_quiet_old_skill_is_idle() -> None:
    assert idle(_skill("a"), SETTINGS, NOW)
    assert idle(_skill("a", usage_count=4, success_score=0.0), SETTINGS, NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"usage_count": 5},  # PRUNE_MAX_USAGE is exclusive
        {"success_score": 0.01},
        {"last_used_at": NOW - timedelta(days=29)},
        {"last_event_at": NOW - timedelta(days=1)},
        {"created_at": NOW - timedelta(days=10)},  # too young to judge
    ],
)
def test_a_used_successful_recent_or_young_skill_is_not_idle(change: dict) -> None:
    assert not idle(_skill("a", **change), SETTINGS, NOW)


def test_the_disable_patch_only_disables_at_the_served_version() -> None:
    row = _skill("0b9d7c1e-0000-4c3b-8e5d-6f7a8b9c0d1e", usage_count=2)
    proposal = disable_proposal(row, SETTINGS)
    assert (proposal.artifact_id, proposal.base_version) == (row.id, 2)
    assert proposal.patch == [{"op": "add", "path": "/status", "value": "disabled"}]
    assert "2 uses" in (proposal.justification or "")
    base = {"kind": rules.KIND, "adapter_type": "skill", "cluster_id": CLUSTER}
    after, _ = patched(base, proposal.patch)
    assert rules.change_shape_problems(base, after, artifact_id=row.id) == []


# --- merging --------------------------------------------------------------------------------


def test_the_weaker_of_two_similar_skills_is_merged_into_the_stronger() -> None:
    base = _unit(1)
    strong = _skill("b", centroid=tuple(base), success_score=0.4, usage_count=3)
    weak = _skill("a", centroid=_near(base, 0.95, 2), success_score=0.1, usage_count=50)
    (merge,) = merges([weak, strong], SETTINGS, exclude=set())
    assert (merge.source.id, merge.into.id) == ("a", "b")
    assert merge.similarity == pytest.approx(0.95, abs=1e-4)
    proposal = merge_proposal(merge, SETTINGS)
    assert proposal.artifact_id == "a"
    assert proposal.patch == [{"op": "add", "path": "/status", "value": "disabled"},
                              {"op": "add", "path": "/merged_into", "value": "b"}]  # fmt: skip
    assert "0.9500" in (proposal.justification or "")


def test_equal_success_merges_the_less_used() -> None:
    base = _unit(1)
    busy = _skill("a", centroid=tuple(base), usage_count=9)
    quiet = _skill("b", centroid=_near(base, 0.99, 3), usage_count=1)
    (merge,) = merges([busy, quiet], SETTINGS, exclude=set())
    assert (merge.source.id, merge.into.id) == ("b", "a")


def test_no_merge_below_the_threshold_across_scopes_without_weights_or_excluded() -> None:
    base = _unit(1)
    a = _skill("a", centroid=tuple(base))
    assert merges([a, _skill("b", centroid=_near(base, 0.89, 2))], SETTINGS, exclude=set()) == []
    near = _near(base, 0.95, 2)
    assert merges([a, _skill("b", centroid=near, owner_user_id=None)], SETTINGS,
                  exclude=set()) == []  # fmt: skip
    assert merges([a, _skill("b", centroid=near, has_weights=False)], SETTINGS,
                  exclude=set()) == []  # fmt: skip
    assert merges([a, _skill("b", centroid=near)], SETTINGS, exclude={"b"}) == []
    assert merges([a, _skill("b", centroid=None)], SETTINGS, exclude=set()) == []
    global_pair = [_skill("a", centroid=tuple(base), owner_user_id=None),
                   _skill("b", centroid=near, owner_user_id=None)]  # fmt: skip
    assert len(merges(global_pair, SETTINGS, exclude=set())) == 1


def test_each_adapter_is_in_one_merge_at_most_the_most_similar_pair_first() -> None:
    base = _unit(1)
    a = _skill("a", centroid=tuple(base), success_score=0.5)
    b = _skill("b", centroid=_near(base, 0.97, 2))
    c = _skill("c", centroid=_near(base, 0.92, 3))
    found = merges([a, b, c], SETTINGS, exclude=set())
    assert len(found) == 1
    assert {found[0].source.id, found[0].into.id} == {"a", "b"}


# --- the cluster function's wiring ----------------------------------------------------------


class _Services:
    db, llm, redis, settings = object(), None, object(), SETTINGS


async def test_a_cluster_run_proposes_skills_for_its_scope_and_survives_a_failed_review(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions.cluster import main
    from shared.domain.clusters.run import RunReport
    from shared.platform.runtime.batch import SqsRecord

    async def clustered(pool, backend, user_id):
        return RunReport("user", user_id)

    reviewed: list[str | None] = []

    async def review(pool, *, scope, redis, settings):
        reviewed.append(scope)
        if len(reviewed) > 1:
            raise RuntimeError("the model is down")

    monkeypatch.setattr(main.run, "run", clustered)
    monkeypatch.setattr(main.skills, "review", review)
    body = f'{{"scope": "user", "user_id": "{USER}"}}'
    record = SqsRecord(messageId="m", receiptHandle="r", body=body,
                       eventSourceARN="arn:aws:sqs:us-east-1:0:ClusterQueue")  # fmt: skip
    await main.handle(record, services=_Services())  # type: ignore[arg-type]
    await main.handle(record, services=_Services())  # type: ignore[arg-type]  # raises nothing
    assert reviewed == [USER, USER]


class _BusyRedis:
    """Another review holds the lock."""

    async def set(self, *args, **kwargs) -> bool:
        return False


async def test_a_second_review_is_skipped_on_the_schedule_and_refused_to_an_admin() -> None:
    from shared.domain.configops import pruning
    from shared.platform.errors import Conflict

    skipped = await pruning.review(object(), redis=_BusyRedis(), settings=SETTINGS,  # type: ignore[arg-type]
                                   scheduled=True)  # fmt: skip
    assert skipped.skipped == "another skill review is in progress" and skipped.proposed == 0
    with pytest.raises(Conflict):
        await pruning.review(object(), redis=_BusyRedis(), settings=SETTINGS)  # type: ignore[arg-type]
