"""The ConfigOps dry-run (issue 20) on the real stack: chat turns through the in-process gateway
and the real model store their routing inputs in the trace, and a patched policy (and workflow)
replayed over them reports exactly the turns it reroutes, with no model call."""

from __future__ import annotations

import json
import statistics

import pytest
from psycopg.types.json import Jsonb

from bench.dry_run import DEFAULT_POLICY, patched_policy, synthetic_turns
from shared.domain.configops.dry_run import replay, replay_routing_turns
from tests.integration.chatkit import chat_api, user

pytestmark = pytest.mark.integration
__all__ = ["chat_api"]

SHORT = ["Hi there!", "Thanks."]
LONG = [
    "What is the capital of France? Answer briefly.",
    "Which planet is known as the Red Planet? One word.",
]


def _rule(rule_id: str, when: str, action: dict) -> dict:
    return {"id": rule_id, "when": when, "action": action}


BEFORE = {
    "kind": "policy.routing",
    "name": "mine",
    "max_active_adapters": 3,
    "weight_floor": 0.05,
    "rules": [
        _rule(
            "persona",
            "true",
            {"type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.5},
        )
    ],
}


async def test_a_patched_policy_replays_over_stored_turns_and_counts_those_it_reroutes(
    chat_api, adapters, model_services
) -> None:
    user_id, headers = await user(chat_api)
    skill = await adapters.publish(user_id, seed=31, kind="skill")
    made = await chat_api.post(
        "/v1/artifacts", headers=headers, json={"name": "mine", "schema": BEFORE}
    )
    assert made.status_code == 201, made.text
    policy_id = made.json()["data"]["id"]

    answered = {}
    for question in [SHORT[0], LONG[0], SHORT[1], LONG[1]]:
        response = await chat_api.post(
            "/v1/chat", headers=headers, json={"message": {"content": question}}
        )
        assert response.status_code == 200, response.text
        answered[question] = response.json()["data"]

    # The stored trace keeps what routing and the workflow's branches read.
    data = answered[LONG[0]]
    listed = await chat_api.get(
        f"/v1/conversations/{data['conversation_id']}/messages", headers=headers
    )
    stored = listed.json()["data"]["items"][-1]["meta"]["trace"]
    assert stored["router"]["policy_id"] == policy_id
    inputs = stored["inputs"]
    routing = inputs["routing"]
    assert len(routing["embedding"]) == 1024  # 384 float16 values, base64
    assert routing["variables"]["message"]["chars"] == len(LONG[0])
    assert skill.adapter_id in [c["id"] for c in routing["candidates"]]
    assert LONG[0] not in json.dumps(inputs)  # the question is the parent message, not a copy
    assert inputs["workflow"]["version"] >= 1 and inputs["workflow"]["input"]["context_ids"] == []
    plain = inputs["workflow"]["tools"]["node_plain"]
    assert plain["ok"] is True and plain["tool"] == "llm.generic_chat_v1"
    bytes_per_turn = len(json.dumps(inputs, separators=(",", ":")))
    whole = len(json.dumps(stored, separators=(",", ":")))
    print(f"\ntrace.inputs: {bytes_per_turn} bytes of a {whole}-byte trace "
          f"({len(routing['candidates'])} candidates)")  # fmt: skip
    assert bytes_per_turn < 2500, bytes_per_turn

    after = {
        **BEFORE,
        "rules": [
            *BEFORE["rules"],
            _rule(
                "long_gets_skill",
                "len(message) > 30",
                {"type": "activate_adapter_by_id", "adapter_id": skill.adapter_id, "weight": 0.3},
            ),
        ],
    }
    async with model_services.db.connection() as conn:
        out = await replay(
            conn,
            kind="policy.routing",
            artifact_id=policy_id,
            owner_user_id=user_id,
            before=BEFORE,
            after=after,
        )
        others = await replay(
            conn,
            kind="policy.routing",
            artifact_id=policy_id,
            owner_user_id=(await adapters.user()),
            before=BEFORE,
            after=after,
        )
    assert out["selected"] == out["replayed"] == 4 and out["skipped"]["total"] == 0
    assert out["reproduced"] == 4
    assert out["changed"] == out["adapters_changed"] == 2
    assert out["rules"]["long_gets_skill"] == {"before": 0, "after": 2}
    assert out["adapters"] == {skill.adapter_id: {"gained": 2, "lost": 0}}
    long_ids = {answered[q]["message_id"] for q in LONG}
    assert {e["message_id"] for e in out["examples"]} == long_ids
    assert all(e["after"] == [{"id": skill.adapter_id, "weight": 0.3}] for e in out["examples"])
    assert others["selected"] == 0  # owner-scoped: another user's turns are not this policy's
    json.dumps(out)

    # The workflow's branches replay from the stored tool outcomes: long questions would go
    # to the RAG node (which these turns never ran: what follows it is undetermined).
    workflow_id = inputs["workflow"]["id"]
    async with model_services.db.connection() as conn:
        row = await (
            await conn.execute("SELECT schema FROM artifact WHERE id = %s", (workflow_id,))
        ).fetchone()
        current = row[0]
        branches = current["nodes"][0]["branches"]
        patched = {
            **current,
            "nodes": [
                {
                    **current["nodes"][0],
                    "branches": [
                        {"when": "len(input.message) > 30", "next": "node_rag"},
                        *branches,
                    ],
                },
                *current["nodes"][1:],
            ],
        }
        flow = await replay(
            conn,
            kind="workflow.chat",
            artifact_id=workflow_id,
            owner_user_id=user_id,
            before=current,
            after=patched,
        )
        other_kind = await replay(
            conn, kind="tool.spec", artifact_id=workflow_id, owner_user_id=None, before={}, after={}
        )
    assert flow["selected"] == flow["replayed"] == 4 and flow["reproduced"] == 4
    assert flow["changed"] == 2 and flow["unchanged"] == 2
    assert {e["message_id"] for e in flow["examples"]} == long_ids
    assert flow["nodes"]["node_plain"] == {"before": 4, "after": 2}
    assert flow["nodes"]["node_rag"] == {"before": 0, "after": 2}
    assert "skipped" in other_kind and len(other_kind) == 1


async def _store_turns(conn, user_id: str, policy_id: str, turns) -> None:
    """`turns` as chat stores them: a question, then an answer whose trace names the policy."""
    conversation = await (
        await conn.execute(
            "INSERT INTO conversation (user_id) VALUES (%s) RETURNING id::text", (user_id,)
        )
    ).fetchone()
    for i, turn in enumerate(turns):
        asked = await (
            await conn.execute(
                "INSERT INTO message (conversation_id, sender, role, content, seq)"
                " VALUES (%s, 'user', 'user', %s, %s) RETURNING id",
                (conversation[0], turn.question, 2 * i + 1),
            )
        ).fetchone()
        trace = {"router": {"policy_id": policy_id, "adapters": turn.adapters},
                 "inputs": turn.inputs, "workflow": turn.nodes}  # fmt: skip
        await conn.execute(
            "INSERT INTO message (conversation_id, sender, role, content, seq, parent_id, meta)"
            " VALUES (%s, 'assistant', 'assistant', 'an answer', %s, %s, %s)",
            (conversation[0], 2 * i + 2, asked[0], Jsonb({"trace": trace})),
        )


async def test_the_dry_run_of_200_stored_turns_costs_little(adapters, model_services) -> None:
    """The issue's figure: `replay()` end to end (the SQL read, centroids, both policies)."""
    user_id = await adapters.user()
    async with model_services.db.connection() as conn:
        ids = []
        for kind in ("persona", "skill", "skill"):
            row = await (
                await conn.execute(
                    "INSERT INTO artifact (owner_user_id, type, name, schema)"
                    " VALUES (%s, 'adapter.lora', %s, %s) RETURNING id::text",
                    (user_id, f"a-{len(ids)}", Jsonb({"adapter_type": kind})),
                )
            ).fetchone()
            ids.append(row[0])
        turns, centroids = synthetic_turns(200, ids=tuple(ids))
        for adapter_id, centroid in centroids.items():
            await conn.execute(
                "INSERT INTO adapter_router_state (artifact_id, centroid_vec)"
                " VALUES (%s, %s::vector)",
                (adapter_id, None if centroid is None else str(list(centroid))),
            )
        policy = await (
            await conn.execute(
                "INSERT INTO artifact (owner_user_id, type, name, schema)"
                " VALUES (%s, 'policy.routing', 'mine', %s) RETURNING id::text",
                (user_id, Jsonb(DEFAULT_POLICY)),
            )
        ).fetchone()
        await _store_turns(conn, user_id, policy[0], turns)
        timings, out = [], {}
        for _ in range(3):
            out = await replay(conn, kind="policy.routing", artifact_id=policy[0],
                               owner_user_id=user_id, before=DEFAULT_POLICY,
                               after=patched_policy(ids[1]))  # fmt: skip
            timings.append(out["elapsed_ms"])
    per_100 = statistics.median(timings) / 2
    print(f"\ndry-run of 200 stored turns: {per_100:.1f} ms per 100 turns (median of 3)")
    assert out["replayed"] == out["reproduced"] == 200 and out["candidates_gone"] == 0
    # The stored path decides as the pure core over the same turns does.
    pure = replay_routing_turns(turns, DEFAULT_POLICY, patched_policy(ids[1]), centroids=centroids)
    assert 0 < out["changed"] == pure["changed"] and out["rules"] == pure["rules"]
    assert per_100 < 5000  # a proposal's dry-run must not hold its request for long
