"""Training per-user LoRA adapters from feedback, on the frozen base (docs/model.md, "Training").

- `samples`: `TrainingSample` (a liked or corrected answer is `preferred`, a disliked one
  `undesirable`), encoded with the chat template the inference service renders, capped, masked
  and padded to few shapes.
- `config`: `TrainingConfig`, saved as `training_config.json` beside the PEFT files
  (`version_files`).
- `params`: the trainable LoRA parameters (one bank slot's layout) and the `LoraBatch` built
  from them; `objective`: the frozen base, the loss and the jitted step.
- `trainer`: `train` -> `TrainingResult` (weights in PEFT's orientation, metrics).
- `evaluation`: `holdout_split`, `evaluate` (held-out loss and alignment), `promotion_decision`.
"""

from shared.neural.training.config import TRAINING_CONFIG_FILE, TrainingConfig, version_files
from shared.neural.training.evaluation import (
    Evaluation,
    Promotion,
    evaluate,
    holdout_split,
    promotion_decision,
    target_logprobs,
)
from shared.neural.training.objective import FrozenBase
from shared.neural.training.samples import PREFERRED, UNDESIRABLE, TrainingSample
from shared.neural.training.trainer import (
    ProgressCallback,
    TrainingDiverged,
    TrainingResult,
    train,
)

__all__ = [
    "PREFERRED",
    "TRAINING_CONFIG_FILE",
    "UNDESIRABLE",
    "Evaluation",
    "FrozenBase",
    "ProgressCallback",
    "Promotion",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingResult",
    "TrainingSample",
    "evaluate",
    "holdout_split",
    "promotion_decision",
    "target_logprobs",
    "train",
    "version_files",
]
