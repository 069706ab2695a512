"""A short recovery fine-tune after pruning, on preloaded training clips.

Deliberately small: pruning removes a fraction of filters from a model that was already
trained, so a few epochs at a low learning rate bring the accuracy back; the full training
features (EMA, schedules, DDP, resumable runs) live in `vidlab.train`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from vidlab.accel.clips import ClipSet

log = logging.getLogger(__name__)


def finetune(model: nn.Module, clips: ClipSet, epochs: int, lr: float = 1e-3,
             batch_size: int = 8, weight_decay: float = 0.01, label_smoothing: float = 0.1,
             seed: int = 0, after_step: Callable[[nn.Module], None] | None = None) -> list[float]:
    """Train `model` in place for `epochs` over `clips` (AdamW, cosine decay); returns epoch losses.

    `after_step` runs after every optimizer step (unstructured pruning re-applies its mask there).
    Clips without a label (target -1) are skipped.
    """
    known = clips.targets >= 0
    x_all, y_all = clips.clips[known], clips.targets[known]
    if epochs <= 0 or not len(x_all):
        return []
    torch.set_flush_denormal(True)  # small decayed weights make denormals; they are slow on CPU
    gen = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(x_all) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    losses = []
    model.train()
    for epoch in range(epochs):
        order, total = gen.permutation(len(x_all)), 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < 2:  # BatchNorm needs more than one sample
                continue
            loss = loss_fn(model(torch.from_numpy(x_all[idx])), torch.from_numpy(y_all[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if after_step is not None:
                after_step(model)
            total += loss.item() * len(idx)
        losses.append(total / len(order))
        log.info("fine-tune epoch %d/%d: loss %.4f", epoch + 1, epochs, losses[-1])
    return losses
