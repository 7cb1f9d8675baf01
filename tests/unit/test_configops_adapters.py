"""ConfigOps' rules for adapters (configops.adapter_patches), their dry-run's pure core, and
what the router is offered (chat.sources.routable): no I/O."""

from __future__ import annotations

import base64
import struct

from shared.domain.chat.sources import routable
from shared.domain.configops import adapter_patches as rules
from shared.domain.configops.adapter_dry_run import active_turns, change_of, offered_turns
from shared.domain.configops.dry_run_sample import PastTurn
from shared.domain.configops.validate import patched, shape_problems

CLUSTER = "3f1c9a52-6f0e-4d7b-9a43-0c2b8f7e1d55"
SELF = "0b9d7c1e-2a4f-4c3b-8e5d-6f7a8b9c0d1e"
OTHER = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
SKILL = {
    "kind": "adapter.lora",
    "adapter_type": "skill",
    "cluster_id": CLUSTER,
    "status": "active",
    "applicability": {"natural_language": "Skill: SQL - writing queries"},
}
TRAINED = {**SKILL, "mode": "local", "fs_dir": "adapters/x/1", "checksum": "abc", "version": 2,
           "rank": 8, "alpha": 16.0}  # fmt: skip
PERSONA = {"kind": "adapter.lora", "adapter_type": "persona", "mode": "prompt", "fs_dir": None,
           "checksum": None, "version": 1}  # fmt: skip


def paths(found: list[dict[str, str]]) -> list[str]:
    return [p["path"] for p in found]


def test_the_adapter_kind_is_validated_by_its_json_schema_not_refused() -> None:
    assert shape_problems("adapter.lora", SKILL) == []
    assert paths(shape_problems("adapter.lora", {**SKILL, "status": "paused"})) == ["/status"]
    assert paths(shape_problems("adapter.lora", {**SKILL, "kind": "tool.spec"})) == ["/kind"]


def test_a_new_skill_is_an_active_weightless_skill_bound_to_a_cluster() -> None:
    schema, found = patched({"kind": "adapter.lora"}, [
        {"op": "add", "path": f"/{k}", "value": v} for k, v in SKILL.items() if k != "kind"
    ])  # fmt: skip
    assert found == [] and schema == SKILL
    assert rules.create_shape_problems(SKILL) == []
    assert rules.create_shape_problems({**SKILL, "status": None, "fs_dir": None}) == []
    assert paths(rules.create_shape_problems({**SKILL, "adapter_type": "persona"})) == [
        "/adapter_type"
    ]
    assert paths(
        rules.create_shape_problems({"kind": "adapter.lora", "adapter_type": "skill"})
    ) == ["/cluster_id"]
    assert paths(rules.create_shape_problems({**SKILL, "status": "disabled"})) == ["/status"]
    assert paths(rules.create_shape_problems({**SKILL, "merged_into": OTHER})) == ["/merged_into"]
    weighted = rules.create_shape_problems(TRAINED)
    assert paths(weighted) == ["/fs_dir", "/checksum", "/version"]
    assert all("training writes" in p["message"] for p in weighted)
    assert paths(rules.create_shape_problems({**SKILL, "remote_adapter_id": "ft:x"})) == [
        "/remote_adapter_id"
    ]


def test_only_status_merged_into_and_applicability_change() -> None:
    assert rules.changed_keys(TRAINED, {**TRAINED, "status": "disabled"}) == ["status"]
    ok = [
        {**TRAINED, "status": "disabled"},
        {**TRAINED, "status": "disabled", "merged_into": OTHER},
        {**TRAINED, "applicability": {"natural_language": "Skill: SQL"}},
        {k: v for k, v in TRAINED.items() if k != "status"},  # absent is active
    ]
    for after in ok:
        assert rules.change_shape_problems(TRAINED, after, artifact_id=SELF) == [], after
    found = rules.change_shape_problems(TRAINED, {**TRAINED, "fs_dir": "elsewhere"},
                                        artifact_id=SELF)  # fmt: skip
    assert paths(found) == ["/fs_dir"]
    assert found[0]["message"].startswith(
        "training writes /fs_dir; ConfigOps may change only status, merged_into, applicability"
    )
    moved = rules.change_shape_problems(TRAINED, {**TRAINED, "cluster_id": OTHER, "rank": 4},
                                        artifact_id=SELF)  # fmt: skip
    assert paths(moved) == ["/cluster_id", "/rank"]
    gone = {k: v for k, v in TRAINED.items() if k != "checksum"}
    assert paths(rules.change_shape_problems(TRAINED, gone, artifact_id=SELF)) == ["/checksum"]


def test_a_merge_disables_and_never_names_itself() -> None:
    still_active = {**TRAINED, "merged_into": OTHER}
    assert paths(rules.change_shape_problems(TRAINED, still_active, artifact_id=SELF)) == [
        "/status"
    ]
    itself = {**TRAINED, "status": "disabled", "merged_into": SELF.upper()}
    assert paths(rules.change_shape_problems(TRAINED, itself, artifact_id=SELF)) == ["/merged_into"]
    # Re-enabling a merged adapter: merged_into removed or null with status active.
    merged = {**TRAINED, "status": "disabled", "merged_into": OTHER}
    for after in ({**TRAINED, "status": "active"}, {**TRAINED, "merged_into": None}):
        assert rules.change_shape_problems(merged, after, artifact_id=SELF) == []
    half = {**merged, "status": "active"}
    assert paths(rules.change_shape_problems(merged, half, artifact_id=SELF)) == ["/status"]
    # An adapter bound to no cluster has no events to hand over.
    unbound = {k: v for k, v in TRAINED.items() if k != "cluster_id"}
    found = rules.change_shape_problems(
        unbound, {**unbound, "status": "disabled", "merged_into": OTHER}, artifact_id=SELF
    )
    assert paths(found) == ["/merged_into"]


def test_the_persona_is_never_disabled_or_merged() -> None:
    for after, path in (
        ({**PERSONA, "status": "disabled"}, "/status"),
        ({**PERSONA, "merged_into": OTHER}, "/merged_into"),
    ):
        found = rules.change_shape_problems(PERSONA, after, artifact_id=SELF)
        assert paths(found) == [path] and "pauses or resets" in found[0]["message"]
    applicable = {**PERSONA, "applicability": {"natural_language": "the user's own voice"}}
    assert rules.change_shape_problems(PERSONA, applicable, artifact_id=SELF) == []


def test_a_skill_takes_its_clusters_scope() -> None:
    assert rules.scope_problems(None, owner_user_id=None, visibility="global") == []
    assert rules.scope_problems(SELF, owner_user_id=SELF, visibility="private") == []
    wrong = [
        (None, SELF, "global"), (None, None, "private"), (SELF, None, "global"),
        (SELF, OTHER, "private"), (SELF, SELF, "shared"),
    ]  # fmt: skip
    for cluster_user, owner, visibility in wrong:
        found = rules.scope_problems(cluster_user, owner_user_id=owner, visibility=visibility)
        assert paths(found) == ["/cluster_id"], (cluster_user, owner, visibility)


def _turn(message_id: str, vector: tuple[float, ...] | None, adapters: list | None = None):
    stored = None
    if vector is not None:
        packed = base64.b64encode(struct.pack(f"<{len(vector)}e", *vector)).decode()
        stored = {"routing": {"embedding": packed}}
    return PastTurn(message_id, "q", stored, adapters or [], [])


def test_a_new_skills_dry_run_counts_the_turns_near_its_cluster() -> None:
    turns = [_turn("m3", (1.0, 0.0)), _turn("m2", (0.0, 1.0)), _turn("m1", None),
             _turn("m0", (0.8, 0.6))]  # fmt: skip
    summary = offered_turns(turns, (1.0, 0.0))
    assert summary["selected"] == 4 and summary["without_embedding"] == 1
    assert summary["would_offer"] == 2 and summary["threshold"] == 0.6
    assert [e["message_id"] for e in summary["examples"]] == ["m3", "m0"]
    assert offered_turns(turns, None)["would_offer"] == 0


def test_a_disables_dry_run_counts_the_turns_that_had_the_adapter() -> None:
    turns = [
        _turn("m2", None, [{"id": SELF, "weight": 0.7}, {"id": OTHER, "weight": 0.3}]),
        _turn("m1", None, [{"id": OTHER, "weight": 1.0}]),
        _turn("m0", None, [{"id": SELF, "weight": 0.5}]),
    ]
    summary = active_turns(turns, SELF)
    assert summary == {"selected": 3, "active_in": 2, "examples": [
        {"message_id": "m2", "weight": 0.7}, {"message_id": "m0", "weight": 0.5}]}  # fmt: skip
    assert change_of(TRAINED, {**TRAINED, "status": "disabled"}) == "disable"
    assert change_of(TRAINED, {**TRAINED, "status": "disabled", "merged_into": OTHER}) == "merge"
    assert change_of({**TRAINED, "status": "disabled"}, TRAINED) == "enable"


def test_the_router_is_offered_neither_disabled_adapters_nor_untrained_skills() -> None:
    assert routable(TRAINED)
    assert not routable({**TRAINED, "status": "disabled"})
    assert not routable(SKILL)  # made by ConfigOps, not trained yet
    assert routable({**SKILL, "mode": "prompt", "prompt_instructions": "Be terse."})
    assert routable({**SKILL, "mode": "remote", "remote_model_id": "ft:gpt:x"})
    assert routable(PERSONA)  # weightless: the persona's own rules shape it
    assert routable({k: v for k, v in PERSONA.items() if k != "adapter_type"})
