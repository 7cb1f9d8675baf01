"""What a fired routing rule does to the active gate weights.

An action is data such as `{"type": "activate_adapter_by_type", "adapter_type": "persona",
"weight": 0.5}`. `action_problems` checks one statically (used by `check_policy` and again
before applying, since a policy may reach the router without having been checked);
`apply_action` changes a working `{adapter_id: weight}` map and returns the changes for the
trace. Guardrails (clamping, normalising, the floor and the cap) are not applied here: the
engine applies them once, after all rules, so later rules see the raw weights earlier ones set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from shared.domain.expressions.functions import cosine_similarity
from shared.domain.routing.candidates import AdapterCandidate

CURRENT = "current"  # adapter_id: the candidates the rule matched
CLOSEST = "closest"  # cluster_id: the clustered candidate whose centroid is nearest the context
SIMILARITY = "similarity"  # weight: cosine of the context and the adapter's centroid

# Fields each action type must carry. scale_adapter_weight also needs adapter_id or adapter_type.
ACTION_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "activate_adapter_by_id": ("adapter_id", "weight"),
        "activate_adapter_by_type": ("adapter_type", "weight"),
        "activate_adapter_by_cluster": ("cluster_id", "weight"),
        "scale_adapter_weight": ("factor",),
        "deactivate_adapter": ("adapter_id",),
        "deactivate_all_adapters": (),
    }
)
ACTION_TYPES: frozenset[str] = frozenset(ACTION_FIELDS)

Change = dict[str, Any]


class ActionError(ValueError):
    """An action that cannot be applied as written; the message says why."""


@dataclass(frozen=True)
class Scope:
    """What a fired rule may act on."""

    candidates: Mapping[str, AdapterCandidate]  # the mode-compatible ones, by id, in input order
    filtered: frozenset[str]  # ids dropped by mode filtering, to explain a skipped activation
    matched: tuple[str, ...]  # ids the rule matched (per-adapter rules only)
    per_adapter: bool
    ctx_embedding: Sequence[float] | None


def action_problems(action: object) -> list[str]:
    """Static problems with one action; [] when it can be applied."""
    if not isinstance(action, Mapping):
        return ["action must be an object"]
    kind = action.get("type")
    if not isinstance(kind, str) or kind not in ACTION_FIELDS:
        known = ", ".join(sorted(ACTION_FIELDS))
        return [f"unknown action type {kind!r} (known: {known})"]
    problems = [f"{kind} needs {name!r}" for name in ACTION_FIELDS[kind] if name not in action]
    if kind == "scale_adapter_weight" and not ("adapter_id" in action or "adapter_type" in action):
        problems.append("scale_adapter_weight needs 'adapter_id' or 'adapter_type'")
    for name in ("adapter_id", "adapter_type", "cluster_id"):
        if name in action and not (isinstance(action[name], str) and action[name]):
            problems.append(f"{name!r} must be a non-empty string")
    if "weight" in action and not (action["weight"] == SIMILARITY or _finite(action["weight"])):
        problems.append(f"'weight' must be a number or {SIMILARITY!r}")
    if "factor" in action and not _finite(action["factor"]):
        problems.append("'factor' must be a number")
    if "overwrite" in action and not isinstance(action["overwrite"], bool):
        problems.append("'overwrite' must be true or false")
    return problems


def apply_action(action: Mapping[str, Any], gates: dict[str, float], scope: Scope) -> list[Change]:
    """Apply `action` to `gates` in place; return the changes made, for the trace.

    All or nothing: an action that fails part way (a centroid of the wrong length, say) raises
    and leaves `gates` as it was.
    """
    problems = action_problems(action)
    if problems:
        raise ActionError("; ".join(problems))
    trial = dict(gates)
    changes = _HANDLERS[action["type"]](action, trial, scope)
    gates.clear()
    gates.update(trial)
    return changes


def similarity(candidate: AdapterCandidate, ctx_embedding: Sequence[float] | None) -> float:
    """Cosine of the context and the adapter's centroid; 0.0 when either is missing."""
    if candidate.centroid is None or ctx_embedding is None:
        return 0.0
    return cosine_similarity(ctx_embedding, candidate.centroid)


def closest(
    candidates: Sequence[AdapterCandidate], ctx_embedding: Sequence[float] | None
) -> AdapterCandidate | None:
    """The candidate with a centroid nearest the context; ties go to the smallest id."""
    if ctx_embedding is None:
        return None
    scored = [(-similarity(c, ctx_embedding), c.id, c) for c in candidates if c.centroid]
    return min(scored, key=lambda s: (s[0], s[1]))[2] if scored else None


# --- handlers ------------------------------------------------------------------------------


def _activate_by_id(
    action: Mapping[str, Any], gates: dict[str, float], scope: Scope
) -> list[Change]:
    wanted = action["adapter_id"]
    if wanted == CURRENT:
        return _activate(_matched(scope), action, gates, scope)
    if wanted in scope.candidates:
        return _activate([scope.candidates[wanted]], action, gates, scope)
    reason = "filtered_by_mode" if wanted in scope.filtered else "unknown_adapter"
    return [{"op": "skip", "id": wanted, "reason": reason}]


def _activate_by_type(
    action: Mapping[str, Any], gates: dict[str, float], scope: Scope
) -> list[Change]:
    wanted = action["adapter_type"]
    targets = [c for c in scope.candidates.values() if c.adapter_type == wanted]
    return _activate(targets, action, gates, scope)


def _activate_by_cluster(
    action: Mapping[str, Any], gates: dict[str, float], scope: Scope
) -> list[Change]:
    wanted = action["cluster_id"]
    if wanted == CLOSEST:
        # A per-adapter rule narrows the choice to what it matched: "near enough, then nearest".
        # Only adapters bound to a cluster count: the persona has a centroid (its training
        # contexts') but serves no cluster, and is activated by its own rule.
        pool = _matched(scope) if scope.per_adapter else list(scope.candidates.values())
        best = closest([c for c in pool if c.cluster_id], scope.ctx_embedding)
        if best is None:
            return [{"op": "skip", "cluster_id": CLOSEST, "reason": "no_candidate_with_centroid"}]
        return _activate([best], action, gates, scope)
    targets = [c for c in scope.candidates.values() if c.cluster_id == wanted]
    if not targets:
        return [{"op": "skip", "cluster_id": wanted, "reason": "no_candidate_in_cluster"}]
    return _activate(targets, action, gates, scope)


def _scale(action: Mapping[str, Any], gates: dict[str, float], scope: Scope) -> list[Change]:
    factor = float(action["factor"])
    changes: list[Change] = []
    for adapter_id in _selected(action, scope):
        if adapter_id in gates:
            previous = gates[adapter_id]
            gates[adapter_id] = previous * factor
            changes.append(
                {"op": "scale", "id": adapter_id, "weight": gates[adapter_id], "from": previous}
            )
    return changes


def _deactivate(action: Mapping[str, Any], gates: dict[str, float], scope: Scope) -> list[Change]:
    wanted = action["adapter_id"]
    ids = list(scope.matched) if wanted == CURRENT else [wanted]
    return [_remove(adapter_id, gates) for adapter_id in ids if adapter_id in gates]


def _deactivate_all(
    action: Mapping[str, Any], gates: dict[str, float], scope: Scope
) -> list[Change]:
    return [_remove(adapter_id, gates) for adapter_id in list(gates)]


_HANDLERS: Mapping[str, Callable[[Mapping[str, Any], dict[str, float], Scope], list[Change]]] = (
    MappingProxyType(
        {
            "activate_adapter_by_id": _activate_by_id,
            "activate_adapter_by_type": _activate_by_type,
            "activate_adapter_by_cluster": _activate_by_cluster,
            "scale_adapter_weight": _scale,
            "deactivate_adapter": _deactivate,
            "deactivate_all_adapters": _deactivate_all,
        }
    )
)


# --- helpers -------------------------------------------------------------------------------


def _activate(
    targets: Sequence[AdapterCandidate],
    action: Mapping[str, Any],
    gates: dict[str, float],
    scope: Scope,
) -> list[Change]:
    """Activate each target; an active one keeps its earlier weight unless `overwrite` (§8.1)."""
    overwrite = bool(action.get("overwrite", False))
    changes: list[Change] = []
    for candidate in targets:
        weight = _weight(action["weight"], candidate, scope)
        previous = gates.get(candidate.id)
        if previous is not None and not overwrite:
            changes.append({"op": "keep", "id": candidate.id, "weight": previous})
            continue
        gates[candidate.id] = weight
        change: Change = {"op": "activate", "id": candidate.id, "weight": weight}
        if previous is not None:
            change["from"] = previous
        changes.append(change)
    return changes


def _weight(spec: Any, candidate: AdapterCandidate, scope: Scope) -> float:
    if spec == SIMILARITY:
        return similarity(candidate, scope.ctx_embedding)
    return float(spec)


def _matched(scope: Scope) -> list[AdapterCandidate]:
    return [scope.candidates[i] for i in scope.matched if i in scope.candidates]


def _selected(action: Mapping[str, Any], scope: Scope) -> list[str]:
    """Ids named by `adapter_id` ("current" = matched) or, failing that, by `adapter_type`."""
    if "adapter_id" in action:
        wanted = action["adapter_id"]
        return list(scope.matched) if wanted == CURRENT else [wanted]
    kind = action["adapter_type"]
    return [c.id for c in scope.candidates.values() if c.adapter_type == kind]


def _remove(adapter_id: str, gates: dict[str, float]) -> Change:
    return {"op": "deactivate", "id": adapter_id, "from": gates.pop(adapter_id)}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
