"""A 2D ResNet trunk applied frame by frame, with an optional temporal shift (TSM).

Parameter names follow `torchvision.models.resnet` (`conv1`, `bn1`, `layer1.0.conv1`, …), so an
ImageNet ResNet state dict loads into the trunk. Used by TSN, TSM and LRCN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.models.layers import DropPath, drop_path_schedule


class TemporalShift(nn.Module):
    """Shift 1/`fold_div` of the channels one frame back and 1/`fold_div` one frame forward.

    Zero-cost temporal modelling (Lin et al., TSM). Works on `(B·T)×C×H×W`; `num_frames` is set
    by the owning model before each forward pass, since the 2D trunk has no time axis.
    """

    def __init__(self, fold_div: int = 8):
        super().__init__()
        self.fold_div = fold_div
        self.num_frames = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.num_frames
        x5 = x.reshape((-1, t) + tuple(x.shape[1:]))
        fold = x5.shape[2] // self.fold_div
        # Concatenation rather than in-place slice assignment: exports to plain ONNX Slice/Concat.
        zero = torch.zeros_like(x5[:, :1, :fold])
        back = torch.cat([x5[:, 1:, :fold], zero], dim=1)             # frame t sees t+1
        fwd = torch.cat([zero, x5[:, :-1, fold:2 * fold]], dim=1)     # frame t sees t-1
        out = torch.cat([back, fwd, x5[:, :, 2 * fold:]], dim=2)
        return out.reshape(x.shape)


class BasicBlock2d(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, shift: bool = False, drop_path: float = 0.0):
        super().__init__()
        self.shift = TemporalShift() if shift else None
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.shift(x) if self.shift is not None else x
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.bn2(self.conv2(out))
        return self.relu(self.drop_path(out) + identity)


class Bottleneck2d(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, shift: bool = False, drop_path: float = 0.0):
        super().__init__()
        self.shift = TemporalShift() if shift else None
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.shift(x) if self.shift is not None else x
        out = self.relu(self.bn1(self.conv1(out)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self.drop_path(out) + identity)


class ResNet2d(nn.Module):
    """ImageNet-style ResNet without its classifier: `N×C×H×W` → `N×num_features`."""

    def __init__(self, block: type, layers: Sequence[int], widths: Sequence[int] = (64, 128, 256, 512),
                 in_channels: int = 3, shift: bool = False, drop_path_rate: float = 0.0):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        rates = iter(drop_path_schedule(sum(layers), drop_path_rate))
        for i, (width, depth) in enumerate(zip(widths, layers, strict=True)):
            setattr(self, f"layer{i + 1}",
                    self._make_layer(block, width, depth, 1 if i == 0 else 2, shift, rates))
        self.num_features = widths[-1] * block.expansion

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int, shift: bool,
                    rates) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, shift, next(rates))]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, shift=shift, drop_path=next(rates))
                   for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def set_num_frames(self, num_frames: int) -> None:
        for m in self.modules():
            if isinstance(m, TemporalShift):
                m.num_frames = num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


def frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """`B×C×T×H×W` → `(B·T)×C×H×W`, frames of one clip adjacent."""
    return x.transpose(1, 2).flatten(0, 1)


def resnet2d(depth: int, widths: Sequence[int] | None = None, **kwargs) -> ResNet2d:
    """ResNet-18/34/50 (or a 'tiny' one at depth 10) trunk."""
    from vidlab.errors import ModelError

    specs = {10: (BasicBlock2d, (1, 1, 1, 1)), 18: (BasicBlock2d, (2, 2, 2, 2)),
             34: (BasicBlock2d, (3, 4, 6, 3)), 50: (Bottleneck2d, (3, 4, 6, 3))}
    if depth not in specs:
        raise ModelError(f"ResNet depth must be one of {sorted(specs)}, got {depth}")
    block, layers = specs[depth]
    return ResNet2d(block, layers, widths or (64, 128, 256, 512), **kwargs)
