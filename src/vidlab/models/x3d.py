"""X3D (Feichtenhofer 2020): the efficient 3D CNN — depthwise 3D convs, inverted bottlenecks
with 2.25× expansion, squeeze-excitation on every other block, SiLU, a 2048-d head.

Layout follows PyTorchVideo's `create_x3d` (stem 1×3×3 + depthwise 5×1×1, stage depths
3-5-11-7, widths 24-48-96-192); SiLU is plain `nn.SiLU` and pooling a plain mean, so ONNX
export works. `factorized=True` computes each depthwise 3×3×3 as a depthwise 1×3×3 followed by a
depthwise 3×1×1 (a different, slightly cheaper function, faster on CPUs where depthwise Conv3d
is slow; see docs/models.md for the measurement) — a training-time choice, not an equivalence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.models.base import VideoModel
from vidlab.models.layers import (
    DropPath,
    check_rate,
    drop_path_schedule,
    global_avg_pool,
    init_weights,
)
from vidlab.models.registry import register_model


def _round_width(width: float, divisor: int = 8) -> int:
    return max(divisor, int(width + divisor / 2) // divisor * divisor)


class SqueezeExcite(nn.Module):
    """Channel gating from the clip-wide mean of each channel."""

    def __init__(self, channels: int, ratio: float = 0.0625):
        super().__init__()
        hidden = _round_width(channels * ratio)
        self.fc1 = nn.Conv3d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv3d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


def depthwise_conv(channels: int, stride: int, factorized: bool) -> nn.Module:
    """Depthwise 3×3×3 (spatial stride `stride`), or its 1×3×3 + 3×1×1 factorisation."""
    if not factorized:
        return nn.Conv3d(channels, channels, 3, (1, stride, stride), 1, groups=channels, bias=False)
    return nn.Sequential(
        nn.Conv3d(channels, channels, (1, 3, 3), (1, stride, stride), (0, 1, 1), groups=channels,
                  bias=False),
        nn.Conv3d(channels, channels, (3, 1, 1), 1, (1, 0, 0), groups=channels, bias=False))


class X3DBlock(nn.Module):
    """1×1×1 expand → BN/ReLU → depthwise 3×3×3 → BN → (SE) → SiLU → 1×1×1 project → BN."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, use_se: bool,
                 factorized: bool, drop_path: float):
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(dim_inner)
        self.act_a = nn.ReLU(inplace=True)
        self.conv_b = depthwise_conv(dim_inner, stride, factorized)
        self.norm_b = nn.BatchNorm3d(dim_inner)
        self.se = SqueezeExcite(dim_inner) if use_se else nn.Identity()
        self.act_b = nn.SiLU()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out)
        self.shortcut = None
        if stride != 1 or dim_in != dim_out:
            self.shortcut = nn.Sequential(
                nn.Conv3d(dim_in, dim_out, 1, (1, stride, stride), bias=False),
                nn.BatchNorm3d(dim_out))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.act_a(self.norm_a(self.conv_a(x)))
        out = self.act_b(self.se(self.norm_b(self.conv_b(out))))
        out = self.norm_c(self.conv_c(out))
        return self.act(self.drop_path(out) + identity)


class X3D(VideoModel):
    """X3D: stem, four stages of `X3DBlock`s, 1×1×1 conv to `head_inner`, pool, 2048-d MLP head."""

    def __init__(self, num_classes: int = 400, num_frames: int = 13, size: int = 160,
                 widths: Sequence[int] = (24, 48, 96, 192), depths: Sequence[int] = (3, 5, 11, 7),
                 width_mult: float = 1.0, expansion: float = 2.25, head_dim: int = 2048,
                 se_ratio: float = 0.0625, factorized: bool = False, in_channels: int = 3,
                 drop_rate: float = 0.5, drop_path_rate: float = 0.0):
        super().__init__()
        self.default_num_frames, self.default_size = num_frames, size
        self.in_channels, self.num_classes = in_channels, num_classes
        widths = [_round_width(w * width_mult) for w in widths]
        stem = widths[0]
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
            nn.Conv3d(stem, stem, (5, 1, 1), 1, (2, 0, 0), groups=stem, bias=False),
            nn.BatchNorm3d(stem), nn.ReLU(inplace=True))
        rates = iter(drop_path_schedule(sum(depths), check_rate("drop_path_rate", drop_path_rate)))
        stages, dim_in = [], stem
        for width, depth in zip(widths, depths, strict=True):
            inner = int(width * expansion)
            blocks = [X3DBlock(dim_in if i == 0 else width, inner, width, 2 if i == 0 else 1,
                               use_se=se_ratio > 0 and i % 2 == 0, factorized=factorized,
                               drop_path=next(rates)) for i in range(depth)]
            stages.append(nn.Sequential(*blocks))
            dim_in = width
        self.stages = nn.Sequential(*stages)
        head_inner = int(widths[-1] * expansion)
        self.head_conv = nn.Sequential(nn.Conv3d(widths[-1], head_inner, 1, bias=False),
                                       nn.BatchNorm3d(head_inner), nn.ReLU(inplace=True))
        self.head_fc = nn.Sequential(nn.Linear(head_inner, head_dim, bias=False), nn.ReLU(inplace=True))
        self.num_features = head_dim
        self.head_drop = nn.Dropout(check_rate("drop_rate", drop_rate))
        self.head = nn.Linear(head_dim, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head_conv(self.stages(self.stem(x)))
        return self.head_fc(global_avg_pool(x))

    def input_spec(self) -> dict[str, int]:
        return {"num_frames": self.default_num_frames, "size": self.default_size,
                "channels": self.in_channels}


@register_model("x3d", num_frames=4, size=160)
def x3d_xs(num_classes: int = 400, num_frames: int = 4, **kwargs) -> X3D:
    """X3D-XS: X3D-S's network on 4 frames of 160²."""
    return X3D(num_classes, num_frames, 160, **kwargs)


@register_model("x3d", num_frames=13, size=160)
def x3d_s(num_classes: int = 400, num_frames: int = 13, **kwargs) -> X3D:
    """X3D-S: 13 frames of 160² (3.8 M parameters)."""
    return X3D(num_classes, num_frames, 160, **kwargs)


@register_model("x3d", num_frames=16, size=64)
def x3d_tiny(num_classes: int = 8, num_frames: int = 16, **kwargs) -> X3D:
    """X3D at widths 16-32-64-128, depths 1-2-3-2, 512-d head: CPU-sized."""
    kwargs.setdefault("widths", (16, 32, 64, 128))
    kwargs.setdefault("depths", (1, 2, 3, 2))
    kwargs.setdefault("head_dim", 512)
    kwargs.setdefault("drop_rate", 0.2)
    return X3D(num_classes, num_frames, 64, **kwargs)
