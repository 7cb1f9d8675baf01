"""The routing-policy evaluator: policy data in, adapters and gate weights out.

Deterministic and free of I/O: the caller loads the `policy.routing` artifact and the adapter
candidates and passes them in, so a policy can be simulated against past contexts before it is
applied. The kernel knows no domain; what "debugging" means lives in the rules.

Steps:
1. Candidates whose mode the active backend cannot run are filtered out before any rule sees
   them.
2. Rules run in order. A rule whose `when` reads a per-adapter name (`adapter_id`,
   `adapter_type`, ...) is evaluated once per candidate and matches those it holds for; any
   other rule is evaluated once. A `when` that cannot be compiled or evaluated does not fire,
   and the trace says why: one bad rule must not take routing down.
3. Guardrails run once, after all rules: clamp to [0, 1], normalise when the sum exceeds 1,
   drop weights under the floor, keep at most `max_active_adapters` (never more than the
   per-request cap of 3), strongest first, ties by id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from shared.domain.expressions.expr import Expression, ExpressionError, compile_expression
from shared.domain.llm.backend import AdapterUse
from shared.domain.llm.providers import LOCAL_MODES, PROVIDERS
from shared.domain.routing.actions import Scope, action_problems, apply_action, closest
from shared.domain.routing.candidates import AdapterCandidate

# The modes each LLM_BACKEND can run: the provider registry's `compatible_modes`,
# plus "local" (our inference service, the settings' name for it) and the spec's
# "local_gpu_lora".
MODES_BY_BACKEND: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        **{name: caps.compatible_modes for name, caps in PROVIDERS.items()},
        "local": LOCAL_MODES,
        "local_gpu_lora": LOCAL_MODES,
    }
)

PER_ADAPTER_NAMES = frozenset(
    {"adapter_id", "adapter_type", "adapter_name", "adapter_centroid", "adapter_cluster"}
)
DEFAULT_WEIGHT_FLOOR = 0.05
MAX_ACTIVE_ADAPTERS = 3  # the per-request adapter cap; a policy may ask for fewer


@dataclass(frozen=True)
class RoutingContext:
    ctx_embedding: tuple[float, ...] | None
    candidates: tuple[AdapterCandidate, ...]
    safety_risk: str = "low"  # low | medium | high
    # Further names rules may read, e.g. {"message": ..., "intent": ..., "usage_stats": {...}}.
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingResult:
    adapters: tuple[AdapterUse, ...]  # at most 3, each weight in [floor, 1], sum <= 1
    trace: dict[str, Any]  # JSON-serialisable, for the `trace` event and the logs


def route(
    policy: Mapping[str, Any], context: RoutingContext, *, supported_modes: frozenset[str]
) -> RoutingResult:
    """Evaluate `policy` over `context`; only candidates in `supported_modes` may be chosen."""
    usable: list[AdapterCandidate] = []
    filtered: list[dict[str, Any]] = []
    for candidate in context.candidates:
        if candidate.mode in supported_modes:
            usable.append(candidate)
        else:
            filtered.append(
                {"id": candidate.id, "mode": candidate.mode, "event": "adapter_filtered_by_mode"}
            )
    nearest = closest([c for c in usable if c.cluster_label], context.ctx_embedding)
    ctx_cluster = nearest.cluster_label if nearest else None
    env = {
        **context.variables,
        "ctx_embedding": context.ctx_embedding,
        "safety_risk": context.safety_risk,
        "ctx_cluster": ctx_cluster,
    }
    by_id: dict[str, AdapterCandidate] = {}
    for candidate in usable:
        by_id.setdefault(candidate.id, candidate)
    filtered_ids = frozenset(f["id"] for f in filtered) - by_id.keys()

    gates: dict[str, float] = {}
    rule_traces = []
    for index, rule in enumerate(_rules(policy)):
        entry, matched, per_adapter = _evaluate_rule(index, rule, env, list(by_id.values()))
        if entry["fired"]:
            scope = Scope(by_id, filtered_ids, matched, per_adapter, context.ctx_embedding)
            try:
                entry["changes"] = apply_action(rule["action"], gates, scope)
            except ValueError as exc:  # ActionError, or ExpressionError from a bad centroid
                entry["error"] = _join(entry.get("error"), f"action: {exc}")
        rule_traces.append(entry)

    floor, most = _weight_floor(policy), _max_active(policy)
    kept, dropped = _guardrails(gates, floor=floor, max_active=most)
    adapters = tuple(_use(by_id[adapter_id], weight) for adapter_id, weight in kept)
    trace = {
        "policy": policy.get("name"),
        "rules": rule_traces,
        "filtered": filtered,
        "dropped": dropped,
        "adapters": [
            {"id": a.id, "weight": a.weight, "mode": a.mode, "version": a.version} for a in adapters
        ],
        "safety_risk": context.safety_risk,
        "ctx_cluster": ctx_cluster,
        "guardrails": {"weight_floor": floor, "max_active_adapters": most},
    }
    return RoutingResult(adapters=adapters, trace=trace)


def check_policy(policy: Mapping[str, Any]) -> list[str]:
    """Problems a policy has before it runs: `when`s that do not compile, unknown action types,
    missing action fields, bad guardrail settings. [] when fine. (JSON Schema is checked
    elsewhere; this is what a schema cannot see.)"""
    if not isinstance(policy, Mapping):
        return ["policy must be an object"]
    problems: list[str] = []
    rules = policy.get("rules")
    if not isinstance(rules, list):
        problems.append("'rules' must be a list")
        rules = []
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        label = _label(index, rule)
        if not isinstance(rule, Mapping):
            problems.append(f"rule {label}: must be an object")
            continue
        rule_id = rule.get("id")
        if not isinstance(rule_id, str) or not rule_id:
            problems.append(f"rule {label}: 'id' must be a non-empty string")
        elif rule_id in seen:
            problems.append(f"rule {label}: duplicate id")
        else:
            seen.add(rule_id)
        try:
            _compile_when(rule)
        except ExpressionError as exc:
            problems.append(f"rule {label}: when: {exc}")
        problems.extend(f"rule {label}: action: {p}" for p in action_problems(rule.get("action")))
    if "weight_floor" in policy and _weight_floor(policy) != policy["weight_floor"]:
        problems.append("'weight_floor' must be a number between 0 and 1")
    if "max_active_adapters" in policy and _max_active(policy) != policy["max_active_adapters"]:
        problems.append(f"'max_active_adapters' must be an integer from 0 to {MAX_ACTIVE_ADAPTERS}")
    return problems


# --- rules ---------------------------------------------------------------------------------


def _rules(policy: Mapping[str, Any]) -> list[Any]:
    rules = policy.get("rules")
    return rules if isinstance(rules, list) else []


def _evaluate_rule(
    index: int, rule: Any, env: Mapping[str, Any], candidates: Sequence[AdapterCandidate]
) -> tuple[dict[str, Any], tuple[str, ...], bool]:
    """Whether `rule` fires and which candidates it matched; the trace entry says why not."""
    rule_id = rule.get("id") if isinstance(rule, Mapping) else None
    entry: dict[str, Any] = {
        "id": rule_id if isinstance(rule_id, str) and rule_id else f"#{index}",
        "fired": False,
        "matched": [],
        "action": None,
        "changes": [],
    }
    if not isinstance(rule, Mapping):
        entry["error"] = "rule must be an object"
        return entry, (), False
    action = rule.get("action")
    entry["action"] = action.get("type") if isinstance(action, Mapping) else None
    try:
        when = _compile_when(rule)
    except ExpressionError as exc:
        entry["error"] = f"when: {exc}"
        return entry, (), False
    if not when.names & PER_ADAPTER_NAMES:
        try:
            entry["fired"] = when.truthy(env)
        except ExpressionError as exc:
            entry["error"] = f"when: {exc}"
        return entry, (), False
    matched: list[str] = []
    errors: list[str] = []
    for candidate in candidates:
        try:
            if when.truthy({**env, **_adapter_names(candidate)}):
                matched.append(candidate.id)
        except ExpressionError as exc:
            errors.append(f"when ({candidate.id}): {exc}")
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        entry["error"] = errors[0] + more
    entry["matched"] = matched
    entry["fired"] = bool(matched)
    return entry, tuple(matched), True


def _compile_when(rule: Mapping[str, Any]) -> Expression:
    when = rule.get("when")
    if isinstance(when, bool):  # JSON `"when": true` reads as well as `"when": "true"`
        when = "true" if when else "false"
    if when is None:
        raise ExpressionError("missing 'when'")
    if not isinstance(when, str):
        raise ExpressionError(f"'when' must be a string, got {type(when).__name__}")
    return _compile(when)


@lru_cache(maxsize=512)
def _compile(source: str) -> Expression:
    """Policies are read on every request; their few distinct expressions are parsed once."""
    return compile_expression(source)


def _adapter_names(candidate: AdapterCandidate) -> dict[str, Any]:
    return {
        "adapter_id": candidate.id,
        "adapter_type": candidate.adapter_type,
        "adapter_name": candidate.name,
        "adapter_centroid": candidate.centroid,
        "adapter_cluster": candidate.cluster_label,
    }


# --- guardrails ----------------------------------------------------------------------------


def _guardrails(
    gates: Mapping[str, float], *, floor: float, max_active: int
) -> tuple[list[tuple[str, float]], list[dict[str, Any]]]:
    """Clamp, normalise, apply the floor and the cap; return (kept, dropped), strongest first."""
    weights = {adapter_id: min(1.0, max(0.0, w)) for adapter_id, w in gates.items()}
    total = sum(weights.values())
    if total > 1.0:
        weights = {adapter_id: w / total for adapter_id, w in weights.items()}
    kept: list[tuple[str, float]] = []
    dropped: list[dict[str, Any]] = []
    for adapter_id, weight in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
        if weight < floor or weight <= 0.0:
            dropped.append({"id": adapter_id, "weight": weight, "reason": "below_floor"})
        elif len(kept) >= max_active:
            dropped.append({"id": adapter_id, "weight": weight, "reason": "max_active"})
        else:
            kept.append((adapter_id, weight))
    return kept, dropped


def _weight_floor(policy: Mapping[str, Any]) -> float:
    value = policy.get("weight_floor", DEFAULT_WEIGHT_FLOOR)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
        return float(value)
    return DEFAULT_WEIGHT_FLOOR


def _max_active(policy: Mapping[str, Any]) -> int:
    value = policy.get("max_active_adapters", MAX_ACTIVE_ADAPTERS)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return min(value, MAX_ACTIVE_ADAPTERS)
    return MAX_ACTIVE_ADAPTERS


def _use(candidate: AdapterCandidate, weight: float) -> AdapterUse:
    return AdapterUse(
        id=candidate.id,
        weight=weight,
        mode=candidate.mode,
        version=candidate.version,
        remote_model_id=candidate.remote_model_id,
        remote_adapter_id=candidate.remote_adapter_id,
        prompt_instructions=candidate.prompt_instructions,
        pending_instructions=candidate.pending_instructions,
    )


def _label(index: int, rule: Any) -> str:
    rule_id = rule.get("id") if isinstance(rule, Mapping) else None
    return repr(rule_id) if isinstance(rule_id, str) and rule_id else f"#{index}"


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second
