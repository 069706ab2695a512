"""Training and model optimization: the Trainer, evaluation, bundles, resume, tuning, DDP.

Public API: `fit(config) -> FitResult`, `finetune(model, ...)`, `evaluate(bundle_or_model,
entries, views) -> EvalResult`, `tune(config_path, trials, ...)`, `TrainConfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidlab.lazy import lazy_getattr

if TYPE_CHECKING:
    from vidlab.train.config import TrainConfig
    from vidlab.train.evaluation import EvalResult, evaluate
    from vidlab.train.finetune import finetune
    from vidlab.train.run import FitResult, fit
    from vidlab.train.search import tune

__all__ = ["EvalResult", "FitResult", "TrainConfig", "evaluate", "finetune", "fit", "tune"]

_WHERE = {"fit": "run", "finetune": "finetune", "FitResult": "run", "evaluate": "evaluation",
          "EvalResult": "evaluation", "tune": "search", "TrainConfig": "config"}

# lazy, so `import vidlab.train` (and `vidlab --help`) does not import torch
__getattr__ = lazy_getattr(__name__, {name: f"vidlab.train.{m}" for name, m in _WHERE.items()})
