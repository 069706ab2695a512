"""Fine-tuning a module you already have — a pruned model, a pretrained one — with `fit`'s loop.

The one fine-tune path: `finetune` here, and acceleration's recovery fine-tune after pruning
(`vidlab.accel.finetune`, which only turns a bundle into the base config) calls it. What makes a
fine-tune differ from a full training run is written once, in `FINETUNE`: the model already
knows the task, so the learning rate is lower, there is no warm-up, no time budget and no early
stop, and EMA averages from the first steps; with a `teacher`, the loss distils from it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from vidlab.train.config import TrainConfig
    from vidlab.train.run import FitResult


@dataclass(frozen=True)
class FinetuneSettings:
    """What a fine-tune changes in its base training config (defaults written once)."""

    lr_factor: float = 0.5
    """Peak learning rate when none is given: this times the base config's."""
    warmup_epochs: float = 0.0
    ema_warmup_steps: int = 10
    distill_alpha: float = 0.7
    """Weight of the teacher's soft targets when there is a teacher (0: labels only)."""


FINETUNE = FinetuneSettings()


def finetune_config(base: TrainConfig | dict[str, Any] | None, data_config: Any, epochs: int,
                    lr: float | None = None, batch_size: int | None = None,
                    distill_alpha: float | None = None, out: str | Path | None = None,
                    overrides: list[str] | None = None,
                    settings: FinetuneSettings = FINETUNE) -> TrainConfig:
    """The `TrainConfig` of a fine-tune: `base` (a config or its dict; default: the defaults)
    with `data_config`, `epochs`, the learning rate (`lr`, else `settings.lr_factor` × base),
    `batch_size` if given, distillation weight `distill_alpha` if given, then `overrides`."""
    from vidlab.config import apply_overrides
    from vidlab.train.config import TrainConfig

    if base is None:
        base = TrainConfig()
    cfg = base.model_dump(mode="json") if isinstance(base, TrainConfig) else dict(base)
    cfg["data"] = data_config.model_dump(mode="json")
    optim = dict(cfg.get("optim") or {})
    optim["lr"] = lr if lr is not None else settings.lr_factor * float(optim.get("lr", 2e-3))
    loop = dict(cfg.get("train") or {})
    loop.update(epochs=epochs, max_minutes=None, early_stopping=None, plots=False,
                tensorboard=False, checkpoint_every=0, compile=False)
    if batch_size:
        loop["batch_size"] = batch_size
    reg = dict(cfg.get("regularization") or {})
    if distill_alpha is not None:
        reg["distill_alpha"] = distill_alpha
    cfg.update(optim=optim, train=loop, regularization=reg,
               schedule={**(cfg.get("schedule") or {}), "warmup_epochs": settings.warmup_epochs},
               ema={**(cfg.get("ema") or {}), "warmup_steps": settings.ema_warmup_steps})
    if out is not None:
        cfg["out"] = str(out)
    return TrainConfig.model_validate(apply_overrides(cfg, overrides))


def finetune(model: nn.Module, train_entries: list[dict[str, Any]],
             val_entries: list[dict[str, Any]], labels: list[str], data_config: Any,
             epochs: int = 3, lr: float | None = None, *, out: str | Path | None = None,
             config: TrainConfig | dict[str, Any] | None = None,
             overrides: list[str] | None = None, batch_size: int | None = None,
             teacher: nn.Module | None = None, distill_alpha: float = FINETUNE.distill_alpha,
             on_epoch: Callable[[int, dict], None] | None = None,
             say: Callable[[str], None] | None = None) -> FitResult:
    """Fine-tune `model` in place with `fit`'s loop; returns fit's result (`.model`: the best
    weights on `val_entries`, `.config`: the fine-tune's config).

    Settings: `finetune_config` (`lr` default: half the base config's). With a `teacher` the
    loss distils from it with weight `distill_alpha`. `on_epoch(epoch, record)` runs after
    every epoch. No bundle is written (the caller owns the model's format); the run dir
    (`out`, else a temporary one) holds the log and checkpoints.
    """
    from vidlab.train.dataset import PreparedData
    from vidlab.train.run import fit

    tmp = tempfile.TemporaryDirectory(prefix="vidlab-finetune-") if out is None else None
    cfg = finetune_config(config, data_config, epochs, lr, batch_size,
                          distill_alpha if teacher is not None else None,
                          out if out is not None else tmp.name, overrides)
    data = PreparedData(list(train_entries), list(val_entries), [], list(labels))
    try:
        return fit(cfg, overwrite=True, model=model, data=data, say=say, write_bundles=False,
                   on_epoch=on_epoch, teacher=teacher)
    finally:
        if tmp is not None:
            tmp.cleanup()
