"""The routing-policy evaluator (SPEC §6.1 policy.routing, §8.1, §18): pure, no I/O."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from shared.domain.llm.backend import AdapterUse
from shared.domain.routing.engine import (
    MODES_BY_BACKEND,
    AdapterCandidate,
    RoutingContext,
    RoutingResult,
    check_policy,
    route,
)

LOCAL = MODES_BY_BACKEND["local"]

PERSONA = AdapterCandidate("persona", "persona", version=3, name="Me")
DEBUG = AdapterCandidate(
    "debug",
    "skill",
    centroid=(1.0, 0.0),
    cluster_id="c-debug",
    cluster_label="Kernel debugging",
)
WRITE = AdapterCandidate(
    "write", "skill", centroid=(0.0, 1.0), cluster_id="c-write", cluster_label="Creative writing"
)
TERSE = AdapterCandidate("terse", "style", mode="prompt", prompt_instructions="Be terse.")
REMOTE = AdapterCandidate("remote", "skill", mode="remote", remote_model_id="ft:gpt:x")
ALL = (PERSONA, DEBUG, WRITE, TERSE, REMOTE)

SPEC_POLICY: dict[str, Any] = {
    "kind": "policy.routing",
    "name": "default_user_routing",
    "description": "Select adapters & tools based on context cluster + safety.",
    "rules": [
        {
            "id": "always_persona",
            "when": "true",
            "action": {
                "type": "activate_adapter_by_type",
                "adapter_type": "persona",
                "weight": 0.5,
            },
        },
        {
            "id": "cluster_near_skill",
            "when": "cosine_similarity(ctx_embedding, adapter_centroid) > 0.6",
            "action": {
                "type": "activate_adapter_by_cluster",
                "cluster_id": "closest",
                "weight": "similarity",
            },
        },
        {
            "id": "safety_never",
            "when": "safety_risk == 'high'",
            "action": {"type": "deactivate_all_adapters"},
        },
    ],
}


def policy(*rules: dict[str, Any], **settings: Any) -> dict[str, Any]:
    numbered = [{"id": f"r{i}", "when": "true", **rule} for i, rule in enumerate(rules)]
    return {"kind": "policy.routing", "name": "test", "rules": numbered, **settings}


def activate(adapter_id: str, weight: Any, **extra: Any) -> dict[str, Any]:
    action = {"type": "activate_adapter_by_id", "adapter_id": adapter_id, "weight": weight}
    return {"action": {**action, **extra}}


def run(
    pol: dict[str, Any],
    *,
    ctx: tuple[float, ...] | None = (0.9, 0.1),
    candidates: tuple[AdapterCandidate, ...] = ALL,
    safety_risk: str = "low",
    variables: dict[str, Any] | None = None,
    modes: frozenset[str] = LOCAL,
) -> RoutingResult:
    context = RoutingContext(ctx, candidates, safety_risk=safety_risk, variables=variables or {})
    result = route(pol, context, supported_modes=modes)
    json.dumps(result.trace)  # the trace must always be JSON-serialisable
    return result


def weights(result: RoutingResult) -> dict[str, float]:
    return {a.id: a.weight for a in result.adapters}


def rule_trace(result: RoutingResult, rule_id: str) -> dict[str, Any]:
    return next(r for r in result.trace["rules"] if r["id"] == rule_id)


# --- the SPEC §6.1 example -----------------------------------------------------------------


def test_the_spec_example_policy_is_valid() -> None:
    assert check_policy(SPEC_POLICY) == []


def test_spec_example_persona_plus_the_nearest_skill_weighted_by_similarity() -> None:
    result = run(SPEC_POLICY, ctx=(0.9, 0.1))
    sim = 0.9 / math.hypot(0.9, 0.1)
    # persona 0.5 + debug `sim` > 1, so both are normalised to sum 1.
    got = weights(result)
    assert set(got) == {"persona", "debug"}
    assert math.isclose(got["debug"], sim / (sim + 0.5))
    assert math.isclose(got["persona"], 0.5 / (sim + 0.5))
    assert math.isclose(sum(got.values()), 1.0)
    near = rule_trace(result, "cluster_near_skill")
    assert near["fired"] and near["matched"] == ["debug"]
    assert near["changes"] == [{"op": "activate", "id": "debug", "weight": pytest.approx(sim)}]
    assert result.trace["policy"] == "default_user_routing"
    assert result.trace["ctx_cluster"] == "Kernel debugging"
    assert not rule_trace(result, "safety_never")["fired"]


def test_spec_example_far_from_every_skill_gives_the_persona_alone() -> None:
    result = run(SPEC_POLICY, ctx=(-1.0, -1.0))
    assert weights(result) == {"persona": 0.5}
    assert rule_trace(result, "cluster_near_skill") == {
        "id": "cluster_near_skill",
        "fired": False,
        "matched": [],
        "action": "activate_adapter_by_cluster",
        "changes": [],
    }


def test_spec_example_high_safety_risk_deactivates_everything() -> None:
    result = run(SPEC_POLICY, safety_risk="high")
    assert result.adapters == ()
    safety = rule_trace(result, "safety_never")
    assert safety["fired"]
    assert {c["id"] for c in safety["changes"]} == {"persona", "debug"}
    assert result.trace["safety_risk"] == "high"


def test_results_carry_the_candidate_fields() -> None:
    result = run(policy(activate("persona", 0.4), activate("terse", 0.3)))
    assert result.adapters == (
        AdapterUse("persona", 0.4, "local", version=3),
        AdapterUse("terse", 0.3, "prompt", prompt_instructions="Be terse."),
    )
    assert result.trace["adapters"] == [
        {"id": "persona", "weight": 0.4, "mode": "local", "version": 3},
        {"id": "terse", "weight": 0.3, "mode": "prompt", "version": None},
    ]


# --- actions -------------------------------------------------------------------------------


def test_activate_by_id_skips_unknown_and_filtered_adapters() -> None:
    result = run(policy(activate("debug", 0.3), activate("nope", 0.3), activate("remote", 0.3)))
    assert weights(result) == {"debug": 0.3}
    assert rule_trace(result, "r1")["changes"] == [
        {"op": "skip", "id": "nope", "reason": "unknown_adapter"}
    ]
    assert rule_trace(result, "r2")["changes"] == [
        {"op": "skip", "id": "remote", "reason": "filtered_by_mode"}
    ]


def test_activate_by_type_takes_every_candidate_of_the_type() -> None:
    rule = {"action": {"type": "activate_adapter_by_type", "adapter_type": "skill", "weight": 0.2}}
    assert weights(run(policy(rule))) == {"debug": 0.2, "write": 0.2}


def test_activate_by_cluster_id_and_closest() -> None:
    by_id = {"type": "activate_adapter_by_cluster", "cluster_id": "c-write", "weight": 0.4}
    assert weights(run(policy({"action": by_id}))) == {"write": 0.4}
    closest = {"type": "activate_adapter_by_cluster", "cluster_id": "closest", "weight": 0.4}
    assert weights(run(policy({"action": closest}), ctx=(0.2, 0.8))) == {"write": 0.4}
    assert weights(run(policy({"action": closest}), ctx=(0.8, 0.2))) == {"debug": 0.4}
    nothing = run(policy({"action": closest}), ctx=None)
    assert nothing.adapters == ()
    assert rule_trace(nothing, "r0")["changes"][0]["reason"] == "no_candidate_with_centroid"


def test_closest_never_picks_the_persona_which_serves_no_cluster() -> None:
    # The persona's centroid (its training contexts') may be the nearest; it is no skill.
    trained = AdapterCandidate("persona", "persona", centroid=(0.9, 0.1))
    closest = {"type": "activate_adapter_by_cluster", "cluster_id": "closest", "weight": 0.4}
    candidates = (trained, DEBUG, WRITE)
    assert weights(run(policy({"action": closest}), ctx=(0.9, 0.1), candidates=candidates)) == {
        "debug": 0.4
    }
    # The seeded policy: the persona at its fixed gate, the nearest *skill* by similarity.
    result = run(SPEC_POLICY, ctx=(0.9, 0.1), candidates=candidates)
    assert set(weights(result)) == {"persona", "debug"}
    changes = rule_trace(result, "cluster_near_skill")["changes"]
    assert [c["id"] for c in changes if c["op"] == "activate"] == ["debug"]
    alone = run(policy({"action": closest}), ctx=(0.9, 0.1), candidates=(trained,))
    assert alone.adapters == ()
    assert rule_trace(alone, "r0")["changes"][0]["reason"] == "no_candidate_with_centroid"


def test_scale_touches_active_adapters_only() -> None:
    scale_skills = {"type": "scale_adapter_weight", "adapter_type": "skill", "factor": 0.5}
    scale_persona = {"type": "scale_adapter_weight", "adapter_id": "persona", "factor": 2}
    result = run(
        policy(activate("debug", 0.4), {"action": scale_skills}, {"action": scale_persona})
    )
    assert weights(result) == {"debug": pytest.approx(0.2)}
    assert rule_trace(result, "r1")["changes"] == [
        {"op": "scale", "id": "debug", "weight": pytest.approx(0.2), "from": 0.4}
    ]
    assert rule_trace(result, "r2")["changes"] == []


def test_deactivate_one_and_all() -> None:
    off = {"action": {"type": "deactivate_adapter", "adapter_id": "debug"}}
    result = run(policy(activate("debug", 0.3), activate("write", 0.3), off))
    assert weights(result) == {"write": 0.3}
    everything = {"action": {"type": "deactivate_all_adapters"}}
    result = run(policy(activate("debug", 0.3), activate("write", 0.3), everything))
    assert result.adapters == ()
    assert [c["op"] for c in rule_trace(result, "r2")["changes"]] == ["deactivate"] * 2


def test_a_later_activation_keeps_the_earlier_weight_unless_overwrite() -> None:
    kept = run(policy(activate("debug", 0.3), activate("debug", 0.9)))
    assert weights(kept) == {"debug": 0.3}
    assert rule_trace(kept, "r1")["changes"] == [{"op": "keep", "id": "debug", "weight": 0.3}]
    replaced = run(policy(activate("debug", 0.3), activate("debug", 0.9, overwrite=True)))
    assert weights(replaced) == {"debug": 0.9}
    assert rule_trace(replaced, "r1")["changes"] == [
        {"op": "activate", "id": "debug", "weight": 0.9, "from": 0.3}
    ]


def test_a_per_adapter_rule_deactivates_the_current_candidates() -> None:
    # SPEC §8.2's example patch: no style adapter while debugging.
    avoid = {
        "id": "avoid_style_for_debug",
        "when": "cluster_label_contains(ctx_cluster, 'debug') and adapter_type == 'style'",
        "action": {"type": "deactivate_adapter", "adapter_id": "current"},
    }
    pol = policy(activate("terse", 0.3), activate("persona", 0.3))
    pol["rules"].append(avoid)
    result = run(pol, ctx=(1.0, 0.0))
    assert weights(result) == {"persona": 0.3}
    trace = rule_trace(result, "avoid_style_for_debug")
    assert trace["fired"] and trace["matched"] == ["terse"]
    assert trace["changes"] == [{"op": "deactivate", "id": "terse", "from": 0.3}]
    # Near the writing cluster the rule matches nothing and the style adapter stays.
    assert weights(run(pol, ctx=(0.0, 1.0))) == {"terse": 0.3, "persona": 0.3}


def test_variables_are_names_rules_can_read() -> None:
    rule = {"when": "intent == 'code_edit' and usage_stats.turns > 2", **activate("debug", 0.5)}
    hit = run(policy(rule), variables={"intent": "code_edit", "usage_stats": {"turns": 3}})
    assert weights(hit) == {"debug": 0.5}
    miss = run(policy(rule), variables={"intent": "chat", "usage_stats": {"turns": 3}})
    assert miss.adapters == ()


# --- rules that fail -----------------------------------------------------------------------


def test_a_when_that_fails_at_evaluation_does_not_fire_and_is_traced() -> None:
    broken = {"id": "broken", "when": "usage_stats.turns > 3", **activate("debug", 0.5)}
    pol = {"name": "p", "rules": [broken, {"id": "ok", "when": "true", **activate("write", 0.5)}]}
    result = run(pol)
    trace = rule_trace(result, "broken")
    assert trace["fired"] is False and trace["changes"] == []
    assert "unknown name 'usage_stats'" in trace["error"]
    assert weights(result) == {"write": 0.5}


def test_a_per_adapter_when_failing_for_one_candidate_still_matches_the_others() -> None:
    odd = AdapterCandidate("odd", "skill", centroid=(1.0, 0.0, 0.0))
    rule = {
        "id": "near",
        "when": "cosine_similarity(ctx_embedding, adapter_centroid) > 0.6",
        "action": {"type": "activate_adapter_by_id", "adapter_id": "current", "weight": 0.5},
    }
    result = run({"rules": [rule]}, candidates=(DEBUG, odd))
    assert weights(result) == {"debug": 0.5}
    trace = rule_trace(result, "near")
    assert trace["matched"] == ["debug"] and "odd" in trace["error"]


def test_a_when_that_does_not_compile_is_skipped_and_reported() -> None:
    bad = {"id": "bad", "when": "__import__('os')", **activate("debug", 0.5)}
    result = run({"rules": [bad]})
    assert result.adapters == ()
    assert "not allowed" in rule_trace(result, "bad")["error"]
    assert any("rule 'bad': when:" in p for p in check_policy({"rules": [bad]}))


def test_an_action_that_fails_changes_nothing() -> None:
    odd = AdapterCandidate("odd", "skill", centroid=(1.0, 0.0, 0.0))
    by_type = {"type": "activate_adapter_by_type", "adapter_type": "skill", "weight": "similarity"}
    result = run(policy({"action": by_type}), candidates=(DEBUG, odd))
    assert result.adapters == ()
    trace = rule_trace(result, "r0")
    assert trace["fired"] and trace["changes"] == [] and "action:" in trace["error"]


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"id": "a", "when": "true", "action": {"type": "explode"}}, "unknown action type"),
        ({"id": "a", "when": "true"}, "action must be an object"),
        ({"id": "a", "when": "true", "action": {"type": "activate_adapter_by_id"}}, "needs"),
        (
            {"id": "a", "when": "true", **activate("x", "lots")},
            "'weight' must be a number or 'similarity'",
        ),
        (
            {"id": "a", "when": "true", "action": {"type": "scale_adapter_weight", "factor": 2}},
            "needs 'adapter_id' or 'adapter_type'",
        ),
        ({"id": "a", "when": "true", **activate("x", 0.5, overwrite="yes")}, "'overwrite'"),
        ({"id": "a", **activate("x", 0.5)}, "missing 'when'"),
        ({"id": "a", "when": "1 +", **activate("x", 0.5)}, "syntax error"),
        ({"when": "true", **activate("x", 0.5)}, "'id' must be"),
        ("not a rule", "must be an object"),
    ],
)
def test_check_policy_reports_problems(rule: Any, problem: str) -> None:
    problems = check_policy({"rules": [rule]})
    assert any(problem in p for p in problems), problems


def test_check_policy_reports_duplicates_and_bad_settings() -> None:
    rule = {"id": "a", "when": "true", **activate("x", 0.5)}
    problems = check_policy({"rules": [rule, rule], "weight_floor": 2, "max_active_adapters": 9})
    assert len(problems) == 3
    assert check_policy({"rules": "nope"}) == ["'rules' must be a list"]


# --- guardrails ----------------------------------------------------------------------------


def test_weights_are_clamped_to_one_and_zero() -> None:
    result = run(policy(activate("debug", 1.7), activate("write", -0.5)))
    assert weights(result) == {"debug": 1.0}
    assert result.trace["dropped"] == [{"id": "write", "weight": 0.0, "reason": "below_floor"}]


def test_weights_summing_over_one_are_normalised() -> None:
    result = run(policy(activate("debug", 0.8), activate("write", 0.8), activate("persona", 0.4)))
    assert weights(result) == {"debug": 0.4, "write": 0.4, "persona": 0.2}


def test_weights_under_the_floor_are_dropped_and_recorded() -> None:
    result = run(policy(activate("debug", 0.5), activate("write", 0.04)))
    assert weights(result) == {"debug": 0.5}
    assert result.trace["dropped"] == [{"id": "write", "weight": 0.04, "reason": "below_floor"}]
    higher = run(policy(activate("debug", 0.5), activate("write", 0.2), weight_floor=0.25))
    assert weights(higher) == {"debug": 0.5}


def test_at_most_three_adapters_strongest_first_ties_by_id() -> None:
    many = (PERSONA, DEBUG, WRITE, TERSE)
    rules = [activate(c.id, 0.2) for c in many]
    result = run(policy(*rules), candidates=many)
    assert [a.id for a in result.adapters] == ["debug", "persona", "terse"]
    assert result.trace["dropped"] == [{"id": "write", "weight": 0.2, "reason": "max_active"}]
    # A policy may ask for fewer, never more.
    assert len(run(policy(*rules, max_active_adapters=9), candidates=many).adapters) == 3
    assert len(run(policy(*rules, max_active_adapters=1), candidates=many).adapters) == 1


def test_guardrail_invariants_hold() -> None:
    rules = [activate(c.id, w) for c, w in zip(ALL, (0.9, 0.7, 0.5, 0.3, 0.9), strict=True)]
    result = run(policy(*rules))
    assert len(result.adapters) <= 3
    assert all(0.05 <= a.weight <= 1.0 for a in result.adapters)
    assert sum(a.weight for a in result.adapters) <= 1.0 + 1e-9
    assert [d["reason"] for d in result.trace["dropped"]] == ["max_active"]


# --- mode filtering ------------------------------------------------------------------------


def test_incompatible_modes_are_filtered_before_rules_and_recorded() -> None:
    skills = {"type": "activate_adapter_by_type", "adapter_type": "skill", "weight": 0.3}
    everything = {"action": skills}
    local = run(policy(everything))
    assert weights(local) == {"debug": 0.3, "write": 0.3}
    assert local.trace["filtered"] == [
        {"id": "remote", "mode": "remote", "event": "adapter_filtered_by_mode"}
    ]
    remote = run(policy(everything), modes=MODES_BY_BACKEND["openai"])
    assert weights(remote) == {"remote": 0.3}
    assert [f["id"] for f in remote.trace["filtered"]] == ["persona", "debug", "write"]


def test_modes_by_backend_follow_the_spec() -> None:
    assert MODES_BY_BACKEND["local"] == {"local", "prompt", "hybrid"}
    assert MODES_BY_BACKEND["local_lora"] == {"local", "prompt", "hybrid"}
    for backend in ("openai", "together", "lorax", "azure", "bedrock"):
        assert MODES_BY_BACKEND[backend] == {"remote", "prompt", "hybrid"}
