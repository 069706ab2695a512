"""Batch-level mixup and cutmix for video clips (`B×C×T×H×W`), called by the trainer."""

from __future__ import annotations

import numpy as np
import torch


def mix_batch(clips: torch.Tensor, targets: torch.Tensor, num_classes: int,
              mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, label_smoothing: float = 0.0,
              generator: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each clip with the batch reversed; return `(clips, soft_targets B×num_classes)`.

    With both alphas set, each batch uses mixup or cutmix with equal chance. Cutmix pastes one
    box through all frames (the same region in every frame, so motion stays intact) and sets
    lambda to the exact pasted area. With both alphas 0 this only converts targets to (smoothed)
    one-hot, so the trainer can call it unconditionally.
    """
    rng = generator if generator is not None else np.random.default_rng()
    soft = one_hot(targets, num_classes, label_smoothing).to(clips.dtype)
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < 0.5)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    if alpha <= 0 or clips.shape[0] < 2:
        return clips, soft
    lam = float(rng.beta(alpha, alpha))
    flipped = clips.flip(0)
    if use_cutmix:
        h, w = clips.shape[-2:]
        cut = (1 - lam) ** 0.5
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        y0, y1 = max(0, cy - ch // 2), min(h, cy + ch // 2)
        x0, x1 = max(0, cx - cw // 2), min(w, cx + cw // 2)
        clips = clips.clone()
        clips[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        clips = clips * lam + flipped * (1 - lam)
    return clips, soft * lam + soft.flip(0) * (1 - lam)


def one_hot(targets: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Integer targets → float one-hot rows, optionally label-smoothed."""
    out = torch.full((targets.shape[0], num_classes), smoothing / num_classes)
    out.scatter_(1, targets.long().view(-1, 1), 1.0 - smoothing + smoothing / num_classes)
    return out
