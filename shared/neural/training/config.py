"""The training configuration: every knob of a run, saved as `training_config.json` beside the
adapter's two PEFT files, so a version says how it was made.

Defaults are set by what a step costs on a CPU (docs/model.md, "Training"): a LoRA step on
SmolLM2-135M costs about 0.55 GFLOP a token, so samples are capped near 256 tokens and a run
makes one or two passes over the data. `for_backend("gpu")` lifts the caps for a GPU container.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from shared.neural import peft
from shared.neural.lora import LoraWeights

TRAINING_CONFIG_FILE = "training_config.json"
FORMAT = "lora-training-config/1"


@dataclass(frozen=True)
class TrainingConfig:
    # The adapter: PEFT's r and lora_alpha (the update is gate · alpha/rank · B·A).
    rank: int = 8
    alpha: float = 16.0
    # The gate the router applies this adapter at when it serves it: trained at that gate, the
    # served update is the one the loss saw.
    gate: float = 1.0
    # Adam with global-norm clipping (DESIGN.md §7: 2e-3 learned a habit from 24 corrections).
    learning_rate: float = 2e-3
    max_grad_norm: float = 1.0
    epochs: int = 2
    max_steps: int = 64
    batch_size: int = 8
    # prompt + target tokens of one sample; the prompt is cut from the left to fit.
    max_tokens: int = 256
    # Coefficient of Σ‖alpha/r·B·A‖² over all targets: the squared L2 norm of the update the
    # adapter makes (see `params.update_norm_squared`).
    l2: float = 1e-3
    # KTO (Ethayarajh et al., 2024): a disliked answer y adds
    # undesirable_weight · sigmoid(kto_beta · (log p(y) - log p_base(y))); liked and corrected
    # answers add desirable_weight · their cross-entropy.
    kto_beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    # Early stopping: stop after `patience` checks without an improvement of `min_delta` in the
    # monitored loss (the validation split's, else the training loss over the last check).
    patience: int = 2
    min_delta: float = 1e-3
    check_every: int = 0  # steps between checks; 0: once an epoch
    seed: int = 0
    time_budget_s: float | None = None

    def __post_init__(self) -> None:
        problems = [
            name
            for name, ok in (
                ("rank", self.rank >= 1),
                ("alpha", _finite(self.alpha) and self.alpha > 0),
                ("gate", _finite(self.gate) and self.gate > 0),
                ("learning_rate", _finite(self.learning_rate) and self.learning_rate > 0),
                ("max_grad_norm", _finite(self.max_grad_norm) and self.max_grad_norm > 0),
                ("epochs", self.epochs >= 1),
                ("max_steps", self.max_steps >= 1),
                ("batch_size", self.batch_size >= 1),
                ("max_tokens", self.max_tokens >= 32),
                ("l2", _finite(self.l2) and self.l2 >= 0),
                ("kto_beta", _finite(self.kto_beta) and self.kto_beta > 0),
                ("desirable_weight", _finite(self.desirable_weight) and self.desirable_weight >= 0),
                (
                    "undesirable_weight",
                    _finite(self.undesirable_weight) and self.undesirable_weight >= 0,
                ),
                ("patience", self.patience >= 1),
                ("min_delta", _finite(self.min_delta) and self.min_delta >= 0),
                ("check_every", self.check_every >= 0),
                (
                    "time_budget_s",
                    self.time_budget_s is None
                    or (_finite(self.time_budget_s) and self.time_budget_s > 0),
                ),
            )
            if not ok
        ]
        if problems:
            raise ValueError(f"invalid training config: {', '.join(problems)}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @classmethod
    def for_backend(cls, backend: str, **overrides: Any) -> TrainingConfig:
        """Defaults for where the job runs (`jax.default_backend()`): the CPU defaults above, or
        on an accelerator longer samples, bigger batches and more passes."""
        if backend in ("gpu", "cuda", "rocm", "tpu"):
            lifted: dict[str, Any] = {
                "max_tokens": 1024,
                "batch_size": 16,
                "epochs": 4,
                "max_steps": 400,
            }
            return cls(**{**lifted, **overrides})
        return cls(**overrides)

    @classmethod
    def continuing(cls, weights: LoraWeights, **overrides: Any) -> TrainingConfig:
        """A config that continues training `weights` (its rank and alpha)."""
        return cls(**{**overrides, "rank": weights.rank, "alpha": weights.alpha})

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **dataclasses.asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> TrainingConfig:
        """Refuses another format or an unknown field (a newer writer's knob that this code
        would silently ignore); a field that is absent takes its default."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"unknown training config fields: {', '.join(unknown)}")
        for name, value in data.items():
            annotation = str(fields[name].type)  # a string: annotations are postponed
            if value is None and "None" in annotation:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"training config field {name} must be a number")
            if annotation == "int" and not isinstance(value, int):
                raise ValueError(f"training config field {name} must be an integer")
        return cls(**data)


def _finite(value: float) -> bool:
    return math.isfinite(value)


def version_files(weights: LoraWeights, config: TrainingConfig) -> tuple[dict[str, bytes], str]:
    """A trained version's files: PEFT's two (`peft.parse` reads them and ignores the third)
    and `training_config.json`, with the checksum over the PEFT files (the one the registry
    records and the inference service checks: the training config plays no part in serving)."""
    files, checksum = peft.dump_with_checksum(weights)
    return {**files, TRAINING_CONFIG_FILE: config.to_json().encode()}, checksum
