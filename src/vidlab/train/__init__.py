"""Training and model optimization: the Trainer, evaluation, bundles, resume, tuning, DDP.

Public API: `fit(config) -> FitResult`, `finetune(model, ...)`, `evaluate(bundle_or_model,
entries, views) -> EvalResult`, `tune(config_path, trials, ...)`, `TrainConfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vidlab.lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers: the names re-exported below, as they are
    from vidlab.train.config import TrainConfig as TrainConfig
    from vidlab.train.evaluation import EvalResult as EvalResult
    from vidlab.train.evaluation import evaluate as evaluate
    from vidlab.train.finetune import finetune as finetune
    from vidlab.train.run import FitResult as FitResult
    from vidlab.train.run import fit as fit
    from vidlab.train.search import tune as tune

# lazy, so `import vidlab.train` (and `vidlab --help`) does not import torch
__all__, __getattr__ = lazy_exports(
    __name__, run=("fit", "FitResult"), finetune=("finetune",),
    evaluation=("evaluate", "EvalResult"), search=("tune",), config=("TrainConfig",))
