"""What each LLM provider can do with adapters, as data.

The adapter planner (`shared.domain.llm.adapter_plan`) reads these entries to format a request; the
router can read `compatible_modes` to filter adapters before policy evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from shared.domain.llm.backend import AdapterMode

# model_id: a fine-tune is its own model id, one per request (OpenAI, Azure, Vertex, Bedrock).
# adapter_param: adapter ids travel in the request body (Together, LoRAX, adapter servers).
# none: no remote adapters; LoRA weights run on our own inference service.
RemoteStyle = Literal["model_id", "adapter_param", "none"]

# How adapter ids are written into the request body:
#   model   - the chosen fine-tune replaces `model`;
#   lorax   - LoRAX's generate parameters `adapter_id`, and `merged_adapters` for several;
#   generic - `adapter_id` (the strongest), plus `adapter_ids`/`adapter_weights` where the
#             provider composes several;
#   local   - our inference service's `adapters: [{id, weight, version}]` extension.
AdapterWire = Literal["model", "lorax", "generic", "local"]

LOCAL_MODES: frozenset[AdapterMode] = frozenset({"local", "prompt", "hybrid"})
REMOTE_MODES: frozenset[AdapterMode] = frozenset({"remote", "prompt", "hybrid"})


@dataclass(frozen=True)
class ProviderCapabilities:
    name: str
    remote_style: RemoteStyle
    multi_adapter: bool
    gate_weights: bool
    max_adapters: int
    wire: AdapterWire
    # OpenAI and the clouds refuse unknown sampling fields, so `top_k` goes only where taken.
    accepts_top_k: bool = False

    @property
    def is_local(self) -> bool:
        return self.remote_style == "none"

    @property
    def compatible_modes(self) -> frozenset[AdapterMode]:
        return LOCAL_MODES if self.is_local else REMOTE_MODES


def _entry(
    name: str,
    style: RemoteStyle,
    multi: bool,
    weights: bool,
    most: int,
    wire: AdapterWire,
    top_k: bool = False,
) -> tuple[str, ProviderCapabilities]:
    return name, ProviderCapabilities(name, style, multi, weights, most, wire, top_k)


# The providers' capability matrix. local_lora's 3 is the inference service's per-request limit
# (`shared.neural.lora.MAX_ADAPTERS_PER_REQUEST`, not imported here: that module loads JAX).
PROVIDERS: Mapping[str, ProviderCapabilities] = MappingProxyType(
    dict(
        [
            _entry("openai", "model_id", False, False, 1, "model"),
            _entry("azure", "model_id", False, False, 1, "model"),
            _entry("vertex", "model_id", False, False, 1, "model"),
            _entry("bedrock", "model_id", False, False, 1, "model"),
            _entry("together", "adapter_param", True, True, 3, "generic", top_k=True),
            _entry("lorax", "adapter_param", True, True, 5, "lorax", top_k=True),
            _entry("adapter_server", "adapter_param", True, True, 3, "generic", top_k=True),
            _entry("sagemaker", "adapter_param", False, False, 1, "generic"),
            _entry("local_lora", "none", True, True, 3, "local", top_k=True),
        ]
    )
)

REMOTE_PROVIDERS = tuple(name for name, caps in PROVIDERS.items() if not caps.is_local)


def capabilities(provider: str) -> ProviderCapabilities:
    try:
        return PROVIDERS[provider]
    except KeyError:
        known = ", ".join(PROVIDERS)
        raise ValueError(f"unknown LLM provider {provider!r} (known: {known})") from None
