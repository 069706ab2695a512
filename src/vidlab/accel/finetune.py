"""Recovery fine-tuning after pruning: the trainer's one fine-tune path on a bundle's data.

The bundle's own training config is the base (data augmentation, label smoothing, EMA, the
split); `vidlab.train.finetune` applies the fine-tune settings written once there (a lower
learning rate, no warm-up, no time budget or early stopping): the pruned model already knows
the task and only needs to re-balance the filters it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vidlab.bundle import Bundle
from vidlab.train.finetune import FINETUNE

if TYPE_CHECKING:
    from torch import nn

DEFAULT_DISTILL = FINETUNE.distill_alpha
"""Weight of the unpruned model's soft targets when fine-tuning after pruning (0: labels only)."""


def finetune(bundle: Bundle, model: nn.Module, splits: Any, epochs: int, lr: float | None = None,
             batch_size: int | None = None,
             on_epoch: Callable[[nn.Module], None] | None = None,
             teacher: nn.Module | None = None,
             distill_alpha: float = DEFAULT_DISTILL) -> dict[str, Any]:
    """Train `model` (in place) for `epochs` on `splits` (a `PreparedData`); returns what was
    done: `{"epochs", "lr", "distill", "val"}`.

    `lr` defaults to half the bundle's training learning rate (cosine-decayed over `epochs`).
    With a `teacher` (the unpruned model) the loss mixes in knowledge distillation
    (`distill_alpha`; the temperature is `regularization.distill_temperature`'s): its soft
    targets carry what the pruned filters knew, which one-hot labels on a small training set
    do not. `on_epoch(model)` runs after every epoch (unstructured pruning re-applies its mask
    there).
    """
    from vidlab.train.evaluation import data_config_of
    from vidlab.train.finetune import finetune as train_finetune

    base = dict(bundle.config.get("train") or {})
    spec = bundle.model_spec
    base["model"] = {"name": spec["name"], "kwargs": spec.get("kwargs", {})}
    hook = (lambda epoch, record: on_epoch(model)) if on_epoch else None
    result = train_finetune(model, splits.train, splits.val, splits.labels,
                            data_config_of(bundle), epochs, lr, config=base,
                            batch_size=batch_size, teacher=teacher,
                            distill_alpha=distill_alpha, on_epoch=hook)
    trained = result.model if result.model is not None else model
    if trained is not model:
        model.load_state_dict(trained.state_dict())
    if on_epoch:
        on_epoch(model)
    config = result.config
    distill = ({"alpha": distill_alpha, "temperature": config.regularization.distill_temperature}
               if teacher is not None else None)
    val = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
    return {"epochs": epochs, "lr": config.optim.lr, "distill": distill,
            "val": {**val, "views": result.metrics.get("val_views")}}
