"""Small building blocks shared by the model families (export-friendly by construction)."""

from __future__ import annotations

import torch
from torch import nn


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dim after channels: `B×C×...` → `B×C`.

    A plain mean instead of `AdaptiveAvgPool3d`, which some ONNX exporters cannot express with a
    dynamic batch, and which is no faster on CPU.
    """
    return x.mean(dim=tuple(range(2, x.ndim)))


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_path_schedule(num_blocks: int, rate: float) -> list[float]:
    """Linearly increasing drop-path rates over the blocks (0 for the first), as in timm."""
    if num_blocks <= 1:
        return [0.0] * num_blocks
    return [rate * i / (num_blocks - 1) for i in range(num_blocks)]


def init_weights(module: nn.Module) -> None:
    """torchvision's initialisation: Kaiming (fan-out) convs, unit BN, small-normal linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.LayerNorm):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def check_rate(name: str, value: float) -> float:
    """Validate a dropout-like probability."""
    from vidlab.errors import ModelError

    if not 0.0 <= float(value) < 1.0:
        raise ModelError(f"{name} must be in [0, 1), got {value}")
    return float(value)


class FrameDifference(nn.Module):
    """`B×C×T×H×W` → `B×2C×T×H×W`: the frames and, beside them, the difference of each frame
    from the one before (the first repeats the second's), batch-normalised.

    Why: a network trained from scratch must first discover temporal differencing before it
    can see slow or small motion — a 1-pixel pan over texture, a few-pixel object among still
    look-alikes — and on such data it can stay at chance for the whole budget. Handing it the
    differences (TSN's RGB-difference modality, "residual frames") makes motion the loudest
    signal from the first step; the normalisation keeps slow motion from being drowned by the
    frames' own contrast.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x[:, :, 1:] - x[:, :, :-1]
        d = torch.cat([d[:, :, :1], d], dim=2)
        return torch.cat([x, self.norm(d)], dim=1)
