"""Exponential moving average of model weights (evaluated and saved instead of the raw weights)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """A frozen copy whose floats follow `decay·ema + (1-decay)·model` after every step.

    The decay ramps from 0 toward `decay` over `warmup_steps` (as `min(decay, (1+n)/(10+n))`
    would), so the average forgets the random init quickly in short runs. Buffers (BN running
    statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float = 0.998, warmup_steps: int = 100):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup_steps, self.updates = decay, warmup_steps, 0

    def current_decay(self) -> float:
        if self.warmup_steps <= 0:
            return self.decay
        return min(self.decay, (1 + self.updates) / (1 + self.updates + self.warmup_steps / 10))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        src = model.state_dict()
        for name, value in self.module.state_dict().items():
            new = src[name].detach()
            if value.dtype.is_floating_point and name in dict(self.module.named_parameters()):
                value.mul_(d).add_(new.to(value.dtype), alpha=1 - d)
            else:
                value.copy_(new)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
