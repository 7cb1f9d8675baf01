"""What the router chooses among: the adapters a user may apply, as rules and actions see them."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.llm.backend import AdapterMode


@dataclass(frozen=True)
class AdapterCandidate:
    """An adapter the router may choose, with what rules may ask about it."""

    id: str
    adapter_type: str  # persona | skill | domain | style
    mode: AdapterMode = "local"
    version: int | None = None
    name: str = ""
    cluster_id: str | None = None
    cluster_label: str | None = None
    centroid: tuple[float, ...] | None = None
    remote_model_id: str | None = None
    remote_adapter_id: str | None = None
    prompt_instructions: str | None = None
    # Instructions the adapter's weights have not learned yet (the persona's newer notes):
    # injected whenever the adapter applies, weights or not.
    pending_instructions: str | None = None
