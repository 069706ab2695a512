"""R3D, MC3 and R(2+1)D (Tran et al. 2018) with torchvision's exact layer and parameter names.

Module names, nesting and shapes follow `torchvision.models.video.resnet`, so torchvision's
published Kinetics-400 state dicts load with `strict=True` (`create("r2plus1d_18",
num_classes=400, weights="r2plus1d_18-91a641e6.pth")`). What we add has no parameters (dropout
before the head, stochastic depth) or is a width/depth knob whose defaults give the torchvision
network; the `*_tiny` variants are the same blocks at widths 16-32-64-128 for CPUs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.models.base import VideoModel
from vidlab.models.layers import (
    DropPath,
    FrameDifference,
    check_rate,
    drop_path_schedule,
    global_avg_pool,
    init_weights,
)
from vidlab.models.registry import register_model


class Conv3DSimple(nn.Conv3d):
    """Full 3×3×3 convolution (R3D)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None,
                 stride: int = 1, padding: int = 1):
        super().__init__(in_planes, out_planes, kernel_size=(3, 3, 3), stride=stride,
                         padding=padding, bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv3DNoTemporal(nn.Conv3d):
    """1×3×3 convolution: spatial only (the '2D' layers of MC3)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None,
                 stride: int = 1, padding: int = 1):
        super().__init__(in_planes, out_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                         padding=(0, padding, padding), bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return 1, stride, stride


class Conv2Plus1D(nn.Sequential):
    """A 3×3×3 convolution factorised into 1×3×3 spatial → BN → ReLU → 3×1×1 temporal."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1,
                 padding: int = 1):
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                      padding=(padding, 0, 0), bias=False),
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class BasicBlock(nn.Module):
    """Two convolutions and a residual; `midplanes` keeps R(2+1)D's parameter count of R3D's."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv_builder: type, stride: int = 1,
                 downsample: nn.Module | None = None, drop_path: float = 0.0):
        super().__init__()
        # torchvision computes one midplanes from (inplanes, planes) and uses it for both convs.
        midplanes = (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)
        self.conv1 = nn.Sequential(conv_builder(inplanes, planes, midplanes, stride),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(self.drop_path(out) + residual)


def basic_stem(in_channels: int, width: int) -> nn.Sequential:
    """3×7×7 conv, spatial stride 2 (R3D, MC3)."""
    return nn.Sequential(
        nn.Conv3d(in_channels, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3),
                  bias=False),
        nn.BatchNorm3d(width), nn.ReLU(inplace=True))


def r2plus1d_stem(in_channels: int, width: int) -> nn.Sequential:
    """1×7×7 spatial then 3×1×1 temporal conv; 45 middle channels at torchvision's width 64."""
    mid = max(1, width * 45 // 64)
    return nn.Sequential(
        nn.Conv3d(in_channels, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                  bias=False),
        nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0),
                  bias=False),
        nn.BatchNorm3d(width), nn.ReLU(inplace=True))


class VideoResNet(VideoModel):
    """torchvision's VideoResNet: stem, four residual stages, global average pool, `fc`."""

    def __init__(self, conv_makers: Sequence[type], layers: Sequence[int], stem: str,
                 num_classes: int = 400, widths: Sequence[int] = (64, 128, 256, 512),
                 in_channels: int = 3, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 num_frames: int = 16, size: int = 112, frame_diff: bool = False):
        super().__init__()
        if len(widths) != 4 or len(layers) != 4:
            from vidlab.errors import ModelError

            raise ModelError(f"VideoResNet needs 4 widths and 4 depths, got {widths} / {layers}")
        self.default_num_frames, self.default_size = num_frames, size
        self.in_channels, self.num_classes = in_channels, num_classes
        stem_fn = r2plus1d_stem if stem == "r2plus1d" else basic_stem
        self.motion = FrameDifference(in_channels) if frame_diff else None
        self.stem = stem_fn(in_channels * (2 if frame_diff else 1), widths[0])
        self.inplanes = widths[0]
        rates = iter(drop_path_schedule(sum(layers), check_rate("drop_path_rate", drop_path_rate)))
        for i, (maker, width, depth) in enumerate(zip(conv_makers, widths, layers, strict=True)):
            stage = self._make_layer(maker, width, depth, 1 if i == 0 else 2, rates)
            setattr(self, f"layer{i + 1}", stage)
        self.num_features = widths[-1] * BasicBlock.expansion
        self.head_drop = nn.Dropout(check_rate("drop_rate", drop_rate))
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self)
        if frame_diff:  # start as the plain network; the differences' weights grow as they help
            nn.init.zeros_(self.stem[0].weight[:, in_channels:])

    def _make_layer(self, conv_builder: type, planes: int, blocks: int, stride: int,
                    rates) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * BasicBlock.expansion, kernel_size=1,
                          stride=conv_builder.get_downsample_stride(stride), bias=False),
                nn.BatchNorm3d(planes * BasicBlock.expansion))
        layers = [BasicBlock(self.inplanes, planes, conv_builder, stride, downsample, next(rates))]
        self.inplanes = planes * BasicBlock.expansion
        layers += [BasicBlock(self.inplanes, planes, conv_builder, drop_path=next(rates))
                   for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.motion is not None:
            x = self.motion(x)
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return global_avg_pool(x)

    def input_spec(self) -> dict[str, int]:
        return {"num_frames": self.default_num_frames, "size": self.default_size,
                "channels": self.in_channels}


_TINY = (16, 32, 64, 128)


def _video_resnet(kind: str, num_classes: int, num_frames: int, size: int,
                  layers: Sequence[int] = (2, 2, 2, 2), **kwargs) -> VideoResNet:
    makers = {"r3d": [Conv3DSimple] * 4,
              "mc3": [Conv3DSimple] + [Conv3DNoTemporal] * 3,
              "r2plus1d": [Conv2Plus1D] * 4}[kind]
    return VideoResNet(makers, kwargs.pop("depths", layers), stem="r2plus1d" if kind == "r2plus1d" else "basic",
                       num_classes=num_classes, num_frames=num_frames, size=size, **kwargs)


@register_model("video_resnet", num_frames=16, size=112)
def r3d_18(num_classes: int = 400, num_frames: int = 16, **kwargs) -> VideoResNet:
    """R3D-18: 3×3×3 convolutions throughout (torchvision layout)."""
    return _video_resnet("r3d", num_classes, num_frames, 112, **kwargs)


@register_model("video_resnet", num_frames=16, size=112)
def mc3_18(num_classes: int = 400, num_frames: int = 16, **kwargs) -> VideoResNet:
    """MC3-18: 3D convolutions in the first stage, 2D (1×3×3) after (torchvision layout)."""
    return _video_resnet("mc3", num_classes, num_frames, 112, **kwargs)


@register_model("video_resnet", num_frames=16, size=112)
def r2plus1d_18(num_classes: int = 400, num_frames: int = 16, **kwargs) -> VideoResNet:
    """R(2+1)D-18: each 3D conv split into spatial + temporal (torchvision layout)."""
    return _video_resnet("r2plus1d", num_classes, num_frames, 112, **kwargs)


@register_model("video_resnet", num_frames=16, size=64)
def r3d_tiny(num_classes: int = 8, num_frames: int = 16, **kwargs) -> VideoResNet:
    """R3D at widths 16-32-64-128, one block per stage: a CPU-sized 3D CNN."""
    kwargs.setdefault("widths", _TINY)
    return _video_resnet("r3d", num_classes, num_frames, 64, layers=(1, 1, 1, 1), **kwargs)


@register_model("video_resnet", num_frames=16, size=64)
def r2plus1d_tiny(num_classes: int = 8, num_frames: int = 16, **kwargs) -> VideoResNet:
    """R(2+1)D at widths 16-32-64-128, one block per stage (~0.8 M parameters)."""
    kwargs.setdefault("widths", _TINY)
    return _video_resnet("r2plus1d", num_classes, num_frames, 64, layers=(1, 1, 1, 1), **kwargs)
