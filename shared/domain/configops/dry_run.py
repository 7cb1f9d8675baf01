"""The dry-run of a proposed patch (issue 20, SPEC §8.2 and §10.2's "simulation against past
logs"): replay the artifact's recent traffic under the version before and after the patch and
summarise what would change, with no model or tool call.

- `policy.routing`: each turn's `RoutingContext` is rebuilt from its trace's stored inputs
  (routing.recorded) and `route()` runs with both policies. Candidates are the turn's own, as
  stored; their centroids are read now by id, and an adapter deleted since stays a candidate
  with its stored attributes and no centroid (counted in `candidates_gone`), so both sides
  see the same set. `reproduced` counts turns where the before-policy chose what the turn
  chose: below `replayed` means the base moved since or centroids changed.
- `adapter.lora`: configops.adapter_dry_run (the turns a new skill would have been offered
  for; the turns a disabled or merged adapter was active in).
- `workflow.chat`: the node path is replayed from the stored tool outcomes
  (workflow.recorded); a branch that reads a value the trace does not keep, or a tool the
  recorded turn never ran, is `undetermined`, never guessed.

Deterministic (newest turns first, ties by id; sorted keys), read-only, no network.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from shared.domain.configops.adapter_dry_run import replay_adapter
from shared.domain.configops.dry_run_sample import PastTurn, current_centroids, recent_turns
from shared.domain.configops.dry_run_workflow import replay_workflow_turns
from shared.domain.expressions.expr import ExpressionError, compile_expression
from shared.domain.routing import recorded
from shared.domain.routing.engine import route

MAX_EXAMPLES = 10
WEIGHT_TOLERANCE = 1e-3
NO_INPUTS = "no stored routing inputs (the trace predates them)"
REPLAYED_KINDS = ("policy.routing", "workflow.chat")


async def replay(
    conn: psycopg.AsyncConnection,
    *,
    kind: str,
    artifact_id: str | None,
    owner_user_id: str | None,
    before: dict,
    after: dict,
    sample: int = 200,
) -> dict:
    """A JSON-able summary of how `after` would have handled the artifact's recent turns
    compared with `before` (module docstring); an adapter's (`artifact_id` None: a new
    skill) is configops.adapter_dry_run's. Other kinds: `{"skipped": why}`."""
    if kind == "adapter.lora":
        return await replay_adapter(conn, artifact_id=artifact_id, owner_user_id=owner_user_id,
                                    before=before, after=after, sample=sample)  # fmt: skip
    if artifact_id is None:
        return {"skipped": "a new artifact has no traffic to replay"}
    if kind not in REPLAYED_KINDS:
        return {"skipped": f"no dry-run for {kind!r} artifacts (only {', '.join(REPLAYED_KINDS)})"}
    started = time.perf_counter()
    turns = await recent_turns(
        conn, kind=kind, artifact_id=artifact_id, owner_user_id=owner_user_id, limit=sample
    )
    if kind == "policy.routing":
        ids = {c["id"] for t in turns for c in _stored(t).get("candidates") or []}
        centroids = await current_centroids(conn, ids)
        summary = replay_routing_turns(turns, before, after, centroids=centroids)
    else:
        summary = replay_workflow_turns(turns, before, after)
    scope = "owner" if owner_user_id is not None else "all users"
    return {
        "kind": kind,
        "sample": sample,
        "scope": scope,
        **summary,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _stored(turn: PastTurn) -> Mapping[str, Any]:
    return ((turn.inputs or {}).get("routing")) or {}


def _read_names(*policies: Mapping[str, Any]) -> frozenset[str]:
    """Every name a rule of these policies reads (a `when` that does not compile reads none:
    it does not fire on either side of a replay, as live)."""
    names: set[str] = set()
    for policy in policies:
        rules = policy.get("rules") if isinstance(policy, Mapping) else None
        for rule in rules if isinstance(rules, list) else []:
            when = rule.get("when") if isinstance(rule, Mapping) else None
            if isinstance(when, str):
                with contextlib.suppress(ExpressionError):
                    names |= compile_expression(when).names
    return frozenset(names)


def _choice(trace_adapters: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": a["id"], "weight": round(float(a["weight"]), 6)} for a in trace_adapters]


def _same(replayed: list[dict[str, Any]], live: list[dict[str, Any]]) -> bool:
    """The replay chose what the turn chose: same adapters, weights within float16's error
    (a `similarity` weight is a cosine of the stored, float16 embedding)."""
    weights = {a["id"]: a["weight"] for a in live}
    return len(weights) == len(replayed) and all(
        a["id"] in weights and abs(a["weight"] - weights[a["id"]]) <= WEIGHT_TOLERANCE
        for a in replayed
    )


def replay_routing_turns(
    turns: Sequence[PastTurn],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    centroids: Mapping[str, tuple[float, ...] | None],
) -> dict[str, Any]:
    """The pure core of a `policy.routing` dry-run over already loaded turns."""
    names = _read_names(before, after)
    skipped: Counter[str] = Counter()
    fired: dict[str, Counter[str]] = {"before": Counter(), "after": Counter()}
    gained: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    gone: set[str] = set()
    replayed = changed = adapters_changed = reproduced = 0
    examples: list[dict[str, Any]] = []
    for turn in turns:
        stored = _stored(turn)
        if not stored:
            skipped[NO_INPUTS] += 1
            continue
        hidden = sorted(
            n
            for n, v in (stored.get("variables") or {}).items()
            if recorded.is_elided(v) and n in names
        )
        if hidden:
            skipped[f"a rule reads {hidden[0]!r}, which the trace does not keep"] += 1
            continue
        try:
            context = recorded.rebuild(stored, message=turn.question, centroids=centroids)
        except recorded.NotReplayable as exc:
            skipped[str(exc)] += 1
            continue
        gone |= {c.id for c in context.candidates if c.id not in centroids}
        modes = recorded.supported_modes(stored)
        try:
            was = route(before, context, supported_modes=modes)
            now = route(after, context, supported_modes=modes)
        except Exception as exc:  # a dry-run reports, it never fails the proposal
            skipped[f"the router failed: {type(exc).__name__}"] += 1
            continue
        replayed += 1
        for side, result in (("before", was), ("after", now)):
            fired[side].update(r["id"] for r in result.trace["rules"] if r["fired"])
        old, new = _choice(was.trace["adapters"]), _choice(now.trace["adapters"])
        reproduced += _same(old, _choice(turn.adapters))
        if old == new:
            continue
        changed += 1
        old_ids, new_ids = {a["id"] for a in old}, {a["id"] for a in new}
        adapters_changed += old_ids != new_ids
        gained.update(new_ids - old_ids)
        lost.update(old_ids - new_ids)
        if len(examples) < MAX_EXAMPLES:
            rules = sorted(
                {r["id"] for r in was.trace["rules"] if r["fired"]}
                ^ {r["id"] for r in now.trace["rules"] if r["fired"]}
            )
            examples.append(
                {"message_id": turn.message_id, "before": old, "after": new, "rules_flipped": rules}
            )
    rule_ids = sorted(set(fired["before"]) | set(fired["after"]) | _rule_ids(before, after))
    return {
        "selected": len(turns),
        "replayed": replayed,
        "skipped": {"total": sum(skipped.values()), "reasons": dict(sorted(skipped.items()))},
        "changed": changed,
        "adapters_changed": adapters_changed,
        "weights_only_changed": changed - adapters_changed,
        "unchanged": replayed - changed,
        "reproduced": reproduced,
        "rules": {r: {"before": fired["before"][r], "after": fired["after"][r]} for r in rule_ids},
        "adapters": {
            a: {"gained": gained[a], "lost": lost[a]} for a in sorted(set(gained) | set(lost))
        },
        "adapters_gained": sum(gained.values()),
        "adapters_lost": sum(lost.values()),
        "candidates": "as stored with each turn; centroids as they are now",
        "candidates_gone": len(gone),
        "examples": examples,
    }


def _rule_ids(*policies: Mapping[str, Any]) -> set[str]:
    """Rule ids of both policies, so a rule that never fires still shows with zero counts."""
    ids: set[str] = set()
    for policy in policies:
        rules = policy.get("rules") if isinstance(policy, Mapping) else None
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            rule_id = rule.get("id") if isinstance(rule, Mapping) else None
            ids.add(rule_id if isinstance(rule_id, str) and rule_id else f"#{index}")
    return ids
