"""ConfigOps' pure parts: applying a patch to a base, the shape checks of the result, who a
proposer is, the request models, and the reason a failed apply records."""

from __future__ import annotations

import copy

import pydantic
import pytest

from functions.config.schemas import DecideIn, ProposeIn
from shared.domain.configops.apply import _reason
from shared.domain.configops.models import Proposer, apply_dedup_key
from shared.domain.configops.validate import MAX_OPS, patched, shape_problems
from shared.platform.errors import Conflict, ValidationError

POLICY = {
    "kind": "policy.routing",
    "name": "mine",
    "rules": [
        {
            "id": "persona",
            "when": "true",
            "action": {"type": "activate_adapter_by_type", "adapter_type": "persona"},
        }
    ],
}
NEW_RULE = {
    "id": "quiet",
    "when": "safety_risk == 'high'",
    "action": {"type": "deactivate_all_adapters"},
}
UUID = "7b0e4d0e-8a0a-4f5e-9d7c-1f2e3d4c5b6a"


def test_a_patch_applies_to_a_copy_of_the_base() -> None:
    base = copy.deepcopy(POLICY)
    after, problems = patched(base, [{"op": "add", "path": "/rules/-", "value": NEW_RULE}])
    assert problems == []
    assert [r["id"] for r in after["rules"]] == ["persona", "quiet"]
    assert base == POLICY  # the base is never changed


@pytest.mark.parametrize(
    ("ops", "path", "said"),
    [
        ([{"op": "remove", "path": "/rules/5"}], "/rules/5", "operation 0"),
        (
            [
                {"op": "add", "path": "/name", "value": "x"},
                {"op": "test", "path": "/name", "value": "y"},
            ],
            "/name",
            "operation 1",
        ),
        ([{"op": "frobnicate", "path": "/name"}], "/name", "operation 0"),
        ([{"path": "/name"}], "/name", "operation 0"),
        (["not an operation"], "", "operation 0"),
    ],
)
def test_an_operation_that_does_not_apply_is_named(ops, path, said) -> None:
    after, problems = patched(POLICY, ops)
    assert after is None and len(problems) == 1
    assert problems[0]["path"] == path and problems[0]["message"].startswith(said)


@pytest.mark.parametrize("ops", [[], {"op": "add"}, None, [{"op": "test", "path": ""}] * 300])
def test_a_patch_is_a_bounded_list_of_operations(ops) -> None:
    after, problems = patched(POLICY, ops)
    assert after is None and problems
    if isinstance(ops, list) and len(ops) > MAX_OPS:
        assert str(MAX_OPS) in problems[0]["message"]


def test_a_patch_that_grows_the_schema_past_the_cap_stops() -> None:
    ops = [{"op": "add", "path": "/description", "value": "x" * 2000}]
    ops += [{"op": "copy", "from": "/rules", "path": f"/r{i}"} for i in range(5)]
    ops.append({"op": "add", "path": "/big", "value": ["y" * 1000] * 300})
    after, problems = patched(POLICY, ops)
    assert after is None and "bytes of JSON" in problems[0]["message"]


def test_shape_problems_keep_the_kind_and_the_kinds_schema() -> None:
    assert shape_problems("policy.routing", POLICY) == []
    changed = {**POLICY, "kind": "tool.spec"}
    assert shape_problems("policy.routing", changed)[0]["path"] == "/kind"
    bogus = {**POLICY, "bogus": 1}
    assert any("bogus" in p["message"] for p in shape_problems("policy.routing", bogus))
    # Adapters are checked by their JSON Schema here; ConfigOps' own rules for them are
    # configops.adapter_patches' (tests/unit/test_configops_adapters.py).
    assert shape_problems("adapter.lora", {"kind": "adapter.lora"}) == []
    assert shape_problems("adapter.lora", {"kind": "adapter.lora", "fs_dir": 1})[0]["path"] == (
        "/fs_dir"
    )


def test_proposers() -> None:
    assert Proposer.system().privileged and Proposer.system().subject == "system"
    admin = Proposer.of(UUID, is_admin=True)
    assert admin.kind == "human_admin" and admin.privileged and admin.subject == UUID
    user = Proposer.of(UUID, is_admin=False)
    assert user.kind == "user" and not user.privileged
    assert apply_dedup_key(7) == "config_patch:7:apply"


def test_the_request_names_one_target_and_one_change() -> None:
    ok = ProposeIn.model_validate({"artifact_id": UUID, "patch": [{"op": "remove", "path": "/x"}]})
    assert ok.base_version is None
    rollback = ProposeIn.model_validate({"artifact_id": UUID, "restore_version": 1})
    assert rollback.patch is None
    create = ProposeIn.model_validate(
        {
            "create": {"kind": "tool.spec", "name": "t"},
            "patch": [{"op": "add", "path": "/a", "value": 1}],
        }
    )
    assert create.create is not None and create.create.visibility == "private"
    for bad in (
        {"patch": [{"op": "remove", "path": "/x"}]},  # no target
        {
            "artifact_id": UUID,
            "create": {"kind": "tool.spec", "name": "t"},
            "patch": [{"op": "remove", "path": "/x"}],
        },
        {"artifact_id": UUID},  # no change
        {"artifact_id": UUID, "restore_version": 1, "patch": [{"op": "remove", "path": "/x"}]},
        {"artifact_id": "not-a-uuid", "restore_version": 1},
        {"artifact_id": UUID, "patch": []},
        {"artifact_id": UUID, "restore_version": 0},
        {"artifact_id": UUID, "restore_version": 1, "extra": True},
    ):
        with pytest.raises(pydantic.ValidationError):
            ProposeIn.model_validate(bad)
    with pytest.raises(pydantic.ValidationError):
        DecideIn.model_validate({"decision": "maybe", "reason": "x"})
    with pytest.raises(pydantic.ValidationError):
        DecideIn.model_validate({"decision": "approve", "reason": ""})


def test_a_failed_apply_says_why() -> None:
    from datetime import UTC, datetime

    from shared.domain.configops.models import Patch

    now = datetime.now(UTC)
    patch = Patch(
        1,
        UUID,
        "policy.routing",
        None,
        "user",
        None,
        [],
        None,
        "applying",
        3,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        {},
        now,
        None,
        None,
        now,
    )
    stale = Conflict("x", details={"reason": "stale_version", "current_version": 4})
    assert _reason(stale, patch).startswith("stale base: the artifact is at version 4")
    assert "version 3" in _reason(stale, patch)
    problems = [{"path": "/rules/0/when", "message": "does not compile"}]
    checked = ValidationError("the artifact does not check out", details=problems)
    assert _reason(checked, patch) == (
        "the artifact does not check out: /rules/0/when: does not compile"
    )
