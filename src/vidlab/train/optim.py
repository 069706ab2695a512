"""Optimizers, learning-rate schedules and the L1 penalty, built from the typed config.

Schedules are per optimizer step (so warm-up and cosine are smooth even with few epochs) and are
plain `LambdaLR`s over a step count, which makes their state trivially exact to resume.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidlab.train.config import OptimConfig, ScheduleConfig

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def param_groups(model: nn.Module, weight_decay: float,
                 lr_scales: dict[str, float] | None = None) -> list[dict]:
    """Weights with decay; norms, biases and 1-D params without (frozen ones left out).

    With `lr_scales` (parameter name → LR multiplier, layer-wise decay) each (decay, scale)
    pair is its own group carrying `lr_scale`; otherwise there are two groups.
    """
    no_decay_ids = set()
    for module in model.modules():
        if isinstance(module, _NORM_TYPES):
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    groups: dict[tuple[bool, float], list] = {(True, 1.0): [], (False, 1.0): []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays = not (id(p) in no_decay_ids or p.ndim <= 1)
        scale = lr_scales.get(name, 1.0) if lr_scales else 1.0
        groups.setdefault((decays, scale), []).append(p)
    return [{"params": params, "weight_decay": weight_decay if decays else 0.0, "lr_scale": scale}
            for (decays, scale), params in groups.items() if params or scale == 1.0]


def build_optimizer(model: nn.Module, cfg: OptimConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum, Nesterov) over `param_groups` (layer-wise LR decay if set)."""
    scales = None
    if cfg.layer_decay is not None and cfg.layer_decay < 1:
        from vidlab.models.blocks import layer_decay_scales

        scales = layer_decay_scales(model, cfg.layer_decay)
    lr = cfg.lr if lr is None else lr
    groups = param_groups(model, cfg.weight_decay, scales)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.betas))


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over the decayed (≥2-D) weights."""
    terms = [p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim > 1]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def lr_factor(step: int, total_steps: int, steps_per_epoch: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the base learning rate at optimizer `step` (0-based)."""
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if warmup > 0 and step < warmup:
        return cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * step / warmup
    if cfg.name == "cosine":
        span = max(1, total_steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.name == "step":
        size = max(1, int(round(cfg.step_size * steps_per_epoch)))
        return cfg.gamma ** ((step - warmup) // size)
    return 1.0  # constant, and plateau (whose decays are applied per evaluation)


class Schedule:
    """Per-step learning rate (warm-up, then cosine/step/constant) plus reduce-on-plateau.

    `total_steps` can be changed mid-run (the time budget re-fits the cosine after the first
    epoch); the state is two numbers and a factor, saved in the checkpoint.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig,
                 steps_per_epoch: int, total_steps: int):
        self.optimizer, self.cfg = optimizer, cfg
        self.steps_per_epoch, self.total_steps = max(1, steps_per_epoch), max(1, total_steps)
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
            g["initial_lr"] = lr
        self.plateau_factor, self.best, self.bad_evals = 1.0, -math.inf, 0
        self.step_num = 0
        self._apply()

    def step(self) -> None:
        self.step_num += 1
        self._apply()

    def observe(self, metric: float) -> None:
        """Feed a validation metric (higher is better); `plateau` decays on stagnation."""
        if self.cfg.name != "plateau":
            return
        if metric > self.best + 1e-6:
            self.best, self.bad_evals = metric, 0
        else:
            self.bad_evals += 1
            if self.bad_evals > self.cfg.patience:
                self.plateau_factor *= self.cfg.gamma
                self.bad_evals = 0
        self._apply()

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def refit(self, total_steps: int) -> None:
        """Re-plan the run's length (a time budget's estimate) and set this step's rate to it."""
        self.total_steps = max(1, total_steps)
        self._apply()

    def _apply(self) -> None:
        f = lr_factor(self.step_num, self.total_steps, self.steps_per_epoch, self.cfg)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            g["lr"] = base * f * self.plateau_factor

    def state_dict(self) -> dict:
        return {"step_num": self.step_num, "total_steps": self.total_steps,
                "plateau_factor": self.plateau_factor, "best": self.best,
                "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict) -> None:
        self.step_num, self.total_steps = int(state["step_num"]), int(state["total_steps"])
        self.plateau_factor, self.best = float(state["plateau_factor"]), float(state["best"])
        self.bad_evals = int(state["bad_evals"])
        self._apply()
