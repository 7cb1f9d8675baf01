"""The dry-run's routing core (ConfigOps, issue 20) and the routing inputs a trace keeps: pure,
no I/O. Turns are recorded with `routing.recorded.record` exactly as chat records them."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from shared.domain.configops.dry_run import NO_INPUTS, replay_routing_turns
from shared.domain.configops.dry_run_sample import PastTurn
from shared.domain.expressions.functions import cosine_similarity
from shared.domain.routing import recorded
from shared.domain.routing.candidates import AdapterCandidate
from shared.domain.routing.engine import MODES_BY_BACKEND, RoutingContext, route

LOCAL = MODES_BY_BACKEND["local"]
PERSONA = AdapterCandidate("persona", "persona", version=2, name="Me", mode="hybrid")
SKILL = AdapterCandidate("skill", "skill", version=1, name="Py", cluster_label="python")
CENTROIDS = {"persona": None, "skill": (1.0, 0.0, 0.0)}


def rule(rule_id: str, when: str, action: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule_id, "when": when, "action": action}


BEFORE: dict[str, Any] = {
    "kind": "policy.routing",
    "name": "mine",
    "rules": [
        rule(
            "persona",
            "true",
            {"type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.5},
        )
    ],
}
LONG_RULE = rule(
    "long_gets_skill",
    "len(message) > 40",
    {"type": "activate_adapter_by_id", "adapter_id": "skill", "weight": 0.3},
)
AFTER = {**BEFORE, "rules": [*BEFORE["rules"], LONG_RULE]}


def unit(*xs: float) -> tuple[float, ...]:
    n = math.sqrt(sum(x * x for x in xs))
    return tuple(x / n for x in xs)


def past(
    message_id: str,
    question: str,
    *,
    vector=(1.0, 0.0, 0.0),
    policy=BEFORE,
    candidates=(PERSONA, SKILL),
    **variables: Any,
) -> PastTurn:
    """A turn as chat stores it: routed live under `policy`, its inputs recorded."""
    live = RoutingContext(
        ctx_embedding=vector,
        variables={"message": question, **variables},
        candidates=tuple(
            AdapterCandidate(**{**c.__dict__, "centroid": CENTROIDS.get(c.id)}) for c in candidates
        ),
    )
    routed = route(policy, live, supported_modes=LOCAL)
    inputs = {"routing": recorded.record(live, supported_modes=LOCAL, message=question)}
    inputs = json.loads(json.dumps(inputs))  # as it comes back from jsonb
    return PastTurn(message_id, question, inputs, routed.trace["adapters"], [])


SHORT, LONG = "Hi there", "Please explain how list comprehensions work in Python"


def test_a_rule_keyed_on_length_changes_exactly_the_long_turns() -> None:
    turns = [past(f"m{i}", LONG if i % 3 == 0 else SHORT) for i in range(9)]
    out = replay_routing_turns(turns, BEFORE, AFTER, centroids=CENTROIDS)
    assert out["selected"] == out["replayed"] == 9 and out["skipped"]["total"] == 0
    assert out["changed"] == out["adapters_changed"] == 3 and out["unchanged"] == 6
    assert out["reproduced"] == 9  # the before-policy is the one the turns routed with
    assert out["rules"] == {
        "persona": {"before": 9, "after": 9},
        "long_gets_skill": {"before": 0, "after": 3},
    }
    assert out["adapters"] == {"skill": {"gained": 3, "lost": 0}}
    assert [e["message_id"] for e in out["examples"]] == ["m0", "m3", "m6"]
    example = out["examples"][0]
    assert example["before"] == [{"id": "persona", "weight": 0.5}]
    assert example["after"] == [{"id": "persona", "weight": 0.5}, {"id": "skill", "weight": 0.3}]
    assert example["rules_flipped"] == ["long_gets_skill"]
    json.dumps(out)  # JSON-able as it is stored on the patch


def test_the_same_policy_changes_nothing_and_is_deterministic() -> None:
    turns = [past(f"m{i}", LONG if i % 2 else SHORT) for i in range(6)]
    first = replay_routing_turns(turns, AFTER, AFTER, centroids=CENTROIDS)
    assert first["changed"] == 0 and first["examples"] == []
    assert replay_routing_turns(turns, AFTER, AFTER, centroids=CENTROIDS) == first


def test_weight_only_changes_are_counted_apart() -> None:
    heavier = {
        **BEFORE,
        "rules": [
            rule(
                "persona",
                "true",
                {"type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.8},
            )
        ],
    }
    out = replay_routing_turns([past("m1", SHORT)], BEFORE, heavier, centroids=CENTROIDS)
    assert out["changed"] == out["weights_only_changed"] == 1 and out["adapters_changed"] == 0
    assert out["adapters"] == {}


def test_old_traces_and_lost_questions_are_skipped_with_reasons() -> None:
    old = PastTurn("old", SHORT, None, [], [])
    edited = past("edited", SHORT)
    edited = PastTurn("edited", "not the routed text", edited.inputs, edited.adapters, [])
    gone = past("gone", SHORT)
    gone = PastTurn("gone", None, gone.inputs, gone.adapters, [])
    out = replay_routing_turns(
        [old, edited, gone, past("ok", LONG)], BEFORE, AFTER, centroids=CENTROIDS
    )
    assert out["replayed"] == 1 and out["changed"] == 1
    assert out["skipped"] == {
        "total": 3,
        "reasons": {
            NO_INPUTS: 1,
            "the question differs from the one routed": 1,
            "the question is gone": 1,
        },
    }


def test_similarity_rules_replay_from_the_stored_embedding_and_current_centroids() -> None:
    near = {
        **BEFORE,
        "rules": [
            *BEFORE["rules"],
            rule(
                "near",
                "cosine_similarity(ctx_embedding, adapter_centroid) > 0.9",
                {"type": "activate_adapter_by_id", "adapter_id": "current", "weight": 0.3},
            ),
        ],
    }
    turns = [
        past("close", SHORT, vector=unit(1.0, 0.1, 0.0)),
        past("far", SHORT, vector=unit(0.0, 1.0, 0.2)),
    ]
    out = replay_routing_turns(turns, BEFORE, near, centroids=CENTROIDS)
    assert out["changed"] == 1 and out["examples"][0]["message_id"] == "close"
    assert {a["id"] for a in out["examples"][0]["after"]} == {"persona", "skill"}
    # A deleted adapter stays a candidate (as stored) with no centroid: it can no longer match.
    out = replay_routing_turns(turns, BEFORE, near, centroids={"persona": None})
    assert out["changed"] == 0 and out["candidates_gone"] == 1


def test_a_rule_reading_an_elided_variable_is_skipped_not_guessed() -> None:
    reads = {
        **BEFORE,
        "rules": [
            *BEFORE["rules"],
            rule("big", "len(stats) > 2", {"type": "deactivate_all_adapters"}),
        ],
    }
    turn = past("m1", SHORT, stats={"x": "y" * 5000})
    assert recorded.is_elided(turn.inputs["routing"]["variables"]["stats"])
    out = replay_routing_turns([turn], BEFORE, reads, centroids=CENTROIDS)
    assert out["replayed"] == 0
    assert out["skipped"]["reasons"] == {"a rule reads 'stats', which the trace does not keep": 1}
    # A policy that does not read it replays fine.
    assert replay_routing_turns([turn], BEFORE, AFTER, centroids=CENTROIDS)["replayed"] == 1


def test_mode_filtering_replays_with_the_modes_of_the_time() -> None:
    remote = AdapterCandidate("remote", "skill", mode="remote")
    by_id = {
        **BEFORE,
        "rules": [
            rule(
                "r",
                "true",
                {"type": "activate_adapter_by_id", "adapter_id": "remote", "weight": 0.4},
            )
        ],
    }
    turn = past("m1", SHORT, candidates=(PERSONA, remote))
    assert turn.inputs["routing"]["modes"] == sorted(LOCAL)
    out = replay_routing_turns([turn], BEFORE, by_id, centroids={})
    assert out["examples"][0]["after"] == []  # the local backend could not run it then


def test_the_stored_block_is_small_and_keeps_no_message_text() -> None:
    rng = random.Random(7)
    vector = unit(*(rng.gauss(0, 1) for _ in range(384)))
    question = "How do I reverse a list in Python? " * 20
    live = RoutingContext(
        ctx_embedding=vector, candidates=(PERSONA, SKILL), variables={"message": question}
    )
    block = recorded.record(live, supported_modes=LOCAL, message=question)
    text = json.dumps(block)
    assert "reverse" not in text and len(text) < 1500, len(text)
    assert block["variables"]["message"]["chars"] == len(question)
    rebuilt = recorded.rebuild(json.loads(text), message=question, centroids=CENTROIDS)
    assert rebuilt.variables == {"message": question} and len(rebuilt.ctx_embedding) == 384
    # float16 moves a cosine by well under 1e-3.
    for _ in range(20):
        other = unit(*(rng.gauss(0, 1) for _ in range(384)))
        exact = cosine_similarity(vector, other)
        assert cosine_similarity(rebuilt.ctx_embedding, other) == pytest.approx(exact, abs=1e-3)
    assert recorded.decode_vector(recorded.encode_vector(None)) is None
