"""Recovery fine-tuning after pruning, with the project's trainer (`vidlab.train.fit`).

The bundle's own training config is reused (data augmentation, label smoothing, EMA, the split),
with a shorter, lower learning-rate schedule and no time budget or early stopping: the pruned
model already knows the task and only needs to re-balance the filters it kept.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vidlab.bundle import Bundle

if TYPE_CHECKING:
    from torch import nn

DEFAULT_DISTILL = 0.7
"""Weight of the unpruned model's soft targets when fine-tuning after pruning (0: labels only)."""


def finetune(bundle: Bundle, model: nn.Module, splits: Any, epochs: int, lr: float | None = None,
             batch_size: int | None = None,
             on_epoch: Callable[[nn.Module], None] | None = None,
             teacher: nn.Module | None = None,
             distill_alpha: float = DEFAULT_DISTILL) -> dict[str, Any]:
    """Train `model` (in place) for `epochs` on `splits` (a `PreparedData`); returns fit's metrics.

    `lr` defaults to half the bundle's training learning rate (cosine-decayed over `epochs`).
    With a `teacher` (the unpruned model) the loss mixes in knowledge distillation
    (`distill_alpha`; the temperature is `regularization.distill_temperature`'s): its soft targets carry what the pruned filters knew,
    which one-hot labels on a small training set do not. `on_epoch(model)` runs after every
    epoch (unstructured pruning re-applies its mask there).
    """
    from vidlab.train.config import TrainConfig
    from vidlab.train.evaluation import data_config_of
    from vidlab.train.run import fit

    cfg = dict(bundle.config.get("train") or {})
    spec = bundle.model_spec
    cfg["model"] = {"name": spec["name"], "kwargs": spec.get("kwargs", {})}
    cfg["data"] = data_config_of(bundle).model_dump(mode="json")
    optim = dict(cfg.get("optim") or {})
    optim["lr"] = lr if lr is not None else 0.5 * float(optim.get("lr", 2e-3))
    loop = dict(cfg.get("train") or {})
    loop.update(epochs=epochs, max_minutes=None, early_stopping=None, plots=False,
                tensorboard=False, checkpoint_every=0, compile=False)
    if batch_size:
        loop["batch_size"] = batch_size
    reg = dict(cfg.get("regularization") or {})
    if teacher is not None:
        reg["distill_alpha"] = distill_alpha
    cfg.update(optim=optim, train=loop, regularization=reg,
               schedule={**(cfg.get("schedule") or {}), "warmup_epochs": 0.0},
               ema={**(cfg.get("ema") or {}), "warmup_steps": 10})
    with tempfile.TemporaryDirectory(prefix="vidlab-finetune-") as run_dir:
        cfg["out"] = run_dir
        config = TrainConfig.model_validate(cfg)
        hook = (lambda epoch, record: on_epoch(model)) if on_epoch else None
        result = fit(config, model=model, data=splits, write_bundles=False, overwrite=True,
                     on_epoch=hook, teacher=teacher)
    trained = result.model if result.model is not None else model
    if trained is not model:
        model.load_state_dict(trained.state_dict())
    if on_epoch:
        on_epoch(model)
    distill = ({"alpha": distill_alpha,
                "temperature": config.regularization.distill_temperature}
               if teacher is not None else None)
    return {"epochs": epochs, "lr": optim["lr"], "distill": distill,
            "val": {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}}

