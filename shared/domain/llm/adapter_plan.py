"""Turning the router's adapter choice into one request for one provider.

Pure: no I/O. The rules:
1. An adapter whose mode the backend cannot run is dropped (`mode_incompatible`).
2. Each other adapter with weights behind it gets a route: LoRA weights on our inference
   service (local, hybrid) or, on an API backend, the provider's fine-tune or adapter id (remote,
   hybrid), read from the field of the provider's style. A remote adapter without that id is
   dropped (`no_remote_id`).
3. Routes beyond the provider's `max_adapters` are dropped, lowest gate first (`max_adapters`).
4. Prompt instructions are injected into the system message for prompt adapters, for hybrid
   adapters on an API backend (always, beside any remote id), and for a hybrid adapter whose
   weights could not be used on the local backend (its prompt fallback).
5. An adapter whose weights apply and that carries `pending_instructions` (instructions newer
   than its weights, which the weights cannot know) gets those injected beside the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.llm.backend import AdapterUse, AppliedAdapter, AppliedHow, Message
from shared.domain.llm.providers import ProviderCapabilities


@dataclass(frozen=True)
class AdapterPlan:
    messages: tuple[Message, ...]
    # Fields the request body takes on top of the usual ones (`model`, adapter fields).
    body: Mapping[str, Any] = field(default_factory=dict)
    applied: tuple[AppliedAdapter, ...] = ()
    trace: tuple[dict[str, Any], ...] = ()


def plan_adapters(
    caps: ProviderCapabilities, messages: Sequence[Message], adapters: Sequence[AdapterUse]
) -> AdapterPlan:
    trace: list[dict[str, Any]] = []
    usable: list[AdapterUse] = []
    for adapter in adapters:
        if adapter.mode in caps.compatible_modes:
            usable.append(adapter)
        else:
            trace.append(_dropped(adapter, "mode_incompatible"))
    # Strongest gate first; `sorted` is stable, so equal gates keep the router's order.
    ranked = sorted(usable, key=lambda a: -a.weight)
    routed = [i for i, a in enumerate(ranked) if _route_id(caps, a) is not None]
    kept = set(routed[: caps.max_adapters])
    overflow = set(routed[caps.max_adapters :])

    applied: list[AppliedAdapter] = []
    instructions: list[str] = []
    for i, adapter in enumerate(ranked):
        if i in kept:
            applied.append(_route_applied(caps, adapter, len(kept)))
        elif i in overflow:
            trace.append(_dropped(adapter, "max_adapters"))
        text = (adapter.prompt_instructions or "").strip()
        if _wants_prompt(caps, adapter, i in overflow) and text:
            instructions.append(text)
            applied.append(AppliedAdapter(adapter.id, 1.0, "prompt"))
            trace.append({"event": "prompt_injected", "id": adapter.id})
        elif i in kept and (pending := (adapter.pending_instructions or "").strip()):
            instructions.append(pending)
            applied.append(AppliedAdapter(adapter.id, 1.0, "prompt"))
            trace.append({"event": "prompt_injected", "id": adapter.id, "pending": True})
        elif i not in kept and i not in overflow:
            trace.append(_dropped(adapter, _why_unused(adapter)))

    chosen = [ranked[i] for i in sorted(kept)]
    return AdapterPlan(
        messages=inject_instructions(messages, instructions),
        body=_body(caps, chosen),
        applied=tuple(applied),
        trace=tuple(trace),
    )


def inject_instructions(
    messages: Sequence[Message], instructions: Sequence[str]
) -> tuple[Message, ...]:
    """Prepend `instructions` to the first system message, or insert one at the start."""
    if not instructions:
        return tuple(messages)
    preamble = "\n\n".join(instructions)
    out = list(messages)
    for i, message in enumerate(out):
        if message.role == "system":
            content = f"{preamble}\n\n{message.content}" if message.content else preamble
            out[i] = Message("system", content)
            return tuple(out)
    return (Message("system", preamble), *out)


def _route_id(caps: ProviderCapabilities, adapter: AdapterUse) -> str | None:
    """The id that carries this adapter's weights to the backend, or None where it has none."""
    if adapter.mode == "prompt":
        return None
    if caps.remote_style == "none":
        return adapter.id
    if caps.remote_style == "model_id":
        return adapter.remote_model_id or None
    return adapter.remote_adapter_id or None


def _wants_prompt(caps: ProviderCapabilities, adapter: AdapterUse, overflowed: bool) -> bool:
    if adapter.mode == "prompt":
        return True
    return adapter.mode == "hybrid" and (not caps.is_local or overflowed)


def _why_unused(adapter: AdapterUse) -> str:
    return "no_prompt_instructions" if adapter.mode == "prompt" else "no_remote_id"


def _dropped(adapter: AdapterUse, reason: str) -> dict[str, Any]:
    return {
        "event": "adapter_dropped",
        "id": adapter.id,
        "weight": adapter.weight,
        "reason": reason,
    }


def _route_applied(caps: ProviderCapabilities, adapter: AdapterUse, count: int) -> AppliedAdapter:
    how: AppliedHow
    if caps.wire == "local":
        how, weight = "lora", adapter.weight
    elif caps.wire == "model":
        how, weight = "model_id", 1.0
    elif caps.wire == "lorax":
        # A single LoRAX adapter goes as `adapter_id`, which takes no weight.
        how, weight = "adapter_param", adapter.weight if count > 1 else 1.0
    else:
        how, weight = "adapter_param", adapter.weight if caps.gate_weights else 1.0
    return AppliedAdapter(adapter.id, weight, how, adapter.version if how == "lora" else None)


def _body(caps: ProviderCapabilities, chosen: Sequence[AdapterUse]) -> dict[str, Any]:
    if not chosen:
        return {}
    if caps.wire == "local":
        return {
            "adapters": [{"id": a.id, "weight": a.weight, "version": a.version} for a in chosen]
        }
    ids = [_route_id(caps, a) for a in chosen]
    weights = [a.weight for a in chosen]
    if caps.wire == "model":
        return {"model": ids[0]}
    if caps.wire == "lorax":
        # LoRAX's request parameters: one adapter by `adapter_id`; several merged per request.
        if len(ids) == 1:
            return {"adapter_id": ids[0]}
        return {"merged_adapters": {"ids": ids, "weights": weights, "merge_strategy": "linear"}}
    # Generic adapter_param providers: `adapter_id` is the
    # strongest adapter, for servers that take one; composing servers also read the full set.
    body: dict[str, Any] = {"adapter_id": ids[0]}
    if caps.multi_adapter:
        body["adapter_ids"] = ids
        if caps.gate_weights:
            body["adapter_weights"] = weights
    return body
