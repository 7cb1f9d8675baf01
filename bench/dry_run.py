"""`python -m bench.dry_run`: the ConfigOps dry-run's cost per 100 replayed turns (issue 20).

The pure replay cores over synthetic turns recorded exactly as chat records them
(`routing.recorded.record`, `workflow.recorded` outcomes, through a JSON round trip as from
jsonb): 384-d unit embeddings, three candidates (a persona and two skills with 384-d
centroids), the seeded default policy against the same plus a rule keyed on message length,
and the seeded default workflow against one with a branch on message length. The database
read is not included here; tests/integration/test_dry_run.py times `replay()` end to end on
the real stack and prints that figure.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from typing import Any

from shared.domain.configops.dry_run import replay_routing_turns
from shared.domain.configops.dry_run_sample import PastTurn
from shared.domain.configops.dry_run_workflow import replay_workflow_turns
from shared.domain.routing import recorded
from shared.domain.routing.candidates import AdapterCandidate
from shared.domain.routing.engine import MODES_BY_BACKEND, RoutingContext, route

TURNS = int(os.environ.get("BENCH_DRY_RUN_TURNS", "200"))
REPEATS = 7
LOCAL = MODES_BY_BACKEND["local"]

# The seeded defaults (sql/seed/001_default_artifacts.sql).
DEFAULT_POLICY: dict[str, Any] = {
    "kind": "policy.routing",
    "name": "default_user_routing",
    "max_active_adapters": 3,
    "weight_floor": 0.05,
    "rules": [
        {"id": "always_persona", "when": "true",
         "action": {"type": "activate_adapter_by_type", "adapter_type": "persona", "weight": 0.5}},
        {"id": "cluster_near_skill",
         "when": "cosine_similarity(ctx_embedding, adapter_centroid) > 0.6",
         "action": {"type": "activate_adapter_by_cluster", "cluster_id": "closest",
                    "weight": "similarity"}},
        {"id": "safety_never", "when": "safety_risk == 'high'",
         "action": {"type": "deactivate_all_adapters"}},
    ],
}  # fmt: skip
IDS = ("persona", "skill-a", "skill-b")


def patched_policy(skill_id: str = IDS[1]) -> dict[str, Any]:
    """The seeded policy plus a rule that gives long questions a skill adapter."""
    long_rule = {"id": "long_gets_skill", "when": "len(message) > 60",
                 "action": {"type": "activate_adapter_by_id", "adapter_id": skill_id,
                            "weight": 0.3}}  # fmt: skip
    return {**DEFAULT_POLICY, "rules": [*DEFAULT_POLICY["rules"], long_rule]}


DEFAULT_WORKFLOW: dict[str, Any] = {
    "kind": "workflow.chat", "entrypoint": "node_route",
    "nodes": [
        {"id": "node_route", "type": "switch", "branches": [
            {"when": "len(input.context_ids) > 0", "next": "node_rag"},
            {"when": "true", "next": "node_plain"}]},
        {"id": "node_rag", "type": "tool_call", "tool": "rag.answer_with_context_v1",
         "outputs": ["answer", "citations"], "next": "node_end"},
        {"id": "node_plain", "type": "tool_call", "tool": "llm.generic_chat_v1",
         "outputs": ["answer"], "next": "node_end"},
        {"id": "node_end", "type": "end"},
    ],
}  # fmt: skip
PATCHED_WORKFLOW = {
    **DEFAULT_WORKFLOW,
    "nodes": [
        {"id": "node_route", "type": "switch", "branches": [
            {"when": "len(input.message) > 60", "next": "node_rag"},
            *DEFAULT_WORKFLOW["nodes"][0]["branches"]]},
        *DEFAULT_WORKFLOW["nodes"][1:],
    ],
}  # fmt: skip


def _unit(rng: random.Random, dim: int = 384) -> tuple[float, ...]:
    v = [rng.gauss(0, 1) for _ in range(dim)]
    n = math.sqrt(sum(x * x for x in v))
    return tuple(x / n for x in v)


def synthetic_turns(
    count: int, seed: int = 1, ids: tuple[str, str, str] = IDS
) -> tuple[list[PastTurn], dict[str, Any]]:
    """`count` turns as chat stores them, routed live under the seeded policy; the
    adapters' centroids by id. `ids`: the persona's and the two skills' adapter ids."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data
    persona, skill_a_id, skill_b_id = ids
    skill_a = _unit(rng)
    centroids = {persona: None, skill_a_id: skill_a, skill_b_id: _unit(rng)}
    candidates = (
        AdapterCandidate(persona, "persona", mode="hybrid", version=3, name="persona"),
        AdapterCandidate(
            skill_a_id,
            "skill",
            version=1,
            name="python",
            cluster_id="0c1a5e00-0000-4000-8000-00000000000a",
            cluster_label="python",
        ),
        AdapterCandidate(
            skill_b_id,
            "skill",
            version=1,
            name="garden",
            cluster_id="0c1a5e00-0000-4000-8000-00000000000b",
            cluster_label="garden",
        ),
    )
    live = tuple(
        AdapterCandidate(**{**c.__dict__, "centroid": centroids[c.id]}) for c in candidates
    )
    words = ["list", "python", "garden", "flower", "reverse", "dict", "spring", "shade", "soil"]
    turns = []
    for i in range(count):
        question = " ".join(rng.choice(words) for _ in range(rng.randint(2, 20)))
        # Half the turns sit near a skill's centroid, so the similarity rule fires on them.
        base = skill_a if i % 2 else _unit(rng)
        noise = _unit(rng)
        vector = tuple(0.8 * b + 0.2 * n for b, n in zip(base, noise, strict=True))
        context = RoutingContext(vector, live, variables={"message": question})
        routed = route(DEFAULT_POLICY, context, supported_modes=LOCAL)
        outcomes = {"node_plain": {"tool": "llm.generic_chat_v1", "ok": True,
                                   "out": {"answer": {"$elided": "str"}}}}  # fmt: skip
        inputs = {
            "routing": recorded.record(context, supported_modes=LOCAL, message=question),
            "workflow": {"id": "w", "version": 1, "input": {"context_ids": []}, "tools": outcomes},
        }
        nodes = [{"node": "node_route"}, {"node": "node_plain"}, {"node": "node_end"}]
        turns.append(
            PastTurn(f"m{i}", question, json.loads(json.dumps(inputs)), routed.trace["adapters"],
                     nodes)
        )  # fmt: skip
    return turns, centroids


def _per_100(fn: Any, count: int) -> float:
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples) * 100 / count


def main() -> None:
    turns, centroids = synthetic_turns(TURNS)
    routing = replay_routing_turns(turns, DEFAULT_POLICY, patched_policy(), centroids=centroids)
    flow = replay_workflow_turns(turns, DEFAULT_WORKFLOW, PATCHED_WORKFLOW)
    routing_ms = _per_100(
        lambda: replay_routing_turns(turns, DEFAULT_POLICY, patched_policy(), centroids=centroids),
        TURNS,
    )
    flow_ms = _per_100(lambda: replay_workflow_turns(turns, DEFAULT_WORKFLOW, PATCHED_WORKFLOW),
                       TURNS)  # fmt: skip
    size = statistics.mean(len(json.dumps(t.inputs, separators=(",", ":"))) for t in turns)
    print(f"turns {TURNS}: routing replayed {routing['replayed']}, changed {routing['changed']},"
          f" reproduced {routing['reproduced']}; workflow changed {flow['changed']}")  # fmt: skip
    print(f"policy.routing dry-run   {routing_ms:7.2f} ms per 100 turns (median of {REPEATS})")
    print(f"workflow.chat dry-run    {flow_ms:7.2f} ms per 100 turns (median of {REPEATS})")
    print(f"trace.inputs             {size:7.0f} bytes per turn (compact JSON, 3 candidates)")


if __name__ == "__main__":
    main()
