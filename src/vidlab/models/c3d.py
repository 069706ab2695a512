"""C3D (Tran et al. 2015): eight 3×3×3 convolutions, five poolings, two 4096-d layers.

One change from the paper, for any input size: global average pooling after conv5 instead of
flattening a fixed 512×1×4×4 map into fc6 (so fc6 is 512→4096, not 8192→4096). BatchNorm after
each convolution is on by default (`norm=False` for the paper's plain convs), since C3D without
it is hard to train from scratch on small data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.models.base import VideoModel
from vidlab.models.layers import check_rate, global_avg_pool, init_weights
from vidlab.models.registry import register_model

_CONVS_PER_STAGE = (1, 1, 2, 2, 2)


class C3D(VideoModel):
    """conv1a pool1 conv2a pool2 conv3a/b pool3 conv4a/b pool4 conv5a/b pool5 fc6 fc7 head."""

    def __init__(self, num_classes: int = 400, num_frames: int = 16, size: int = 112,
                 widths: Sequence[int] = (64, 128, 256, 512, 512), fc_dim: int = 4096,
                 norm: bool = True, in_channels: int = 3, drop_rate: float = 0.5):
        super().__init__()
        self.default_num_frames, self.default_size = num_frames, size
        self.in_channels, self.num_classes = in_channels, num_classes
        layers: list[nn.Module] = []
        cin = in_channels
        for stage, (width, convs) in enumerate(zip(widths, _CONVS_PER_STAGE, strict=True)):
            for _ in range(convs):
                layers += [nn.Conv3d(cin, width, 3, padding=1, bias=not norm)]
                layers += [nn.BatchNorm3d(width)] if norm else []
                layers += [nn.ReLU(inplace=True)]
                cin = width
            # pool1 keeps time; rounding up lets short clips (4 frames, 32²) through as well
            kernel = (1, 2, 2) if stage == 0 else (2, 2, 2)
            layers.append(nn.MaxPool3d(kernel, kernel, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        drop = check_rate("drop_rate", drop_rate)
        self.fc6 = nn.Sequential(nn.Linear(cin, fc_dim), nn.ReLU(inplace=True), nn.Dropout(drop))
        self.fc7 = nn.Sequential(nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True))
        self.num_features = fc_dim
        self.head_drop = nn.Dropout(drop)
        self.head = nn.Linear(fc_dim, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc7(self.fc6(global_avg_pool(self.features(x))))

    def input_spec(self) -> dict[str, int]:
        return {"num_frames": self.default_num_frames, "size": self.default_size,
                "channels": self.in_channels}


@register_model("c3d", num_frames=16, size=112)
def c3d(num_classes: int = 400, num_frames: int = 16, **kwargs) -> C3D:
    """C3D: eight 3×3×3 convs (64…512), two 4096-d layers."""
    return C3D(num_classes, num_frames, 112, **kwargs)


@register_model("c3d", num_frames=16, size=64)
def c3d_tiny(num_classes: int = 8, num_frames: int = 16, **kwargs) -> C3D:
    """C3D at widths 16-32-64-128-128 with 256-d layers: CPU-sized."""
    kwargs.setdefault("widths", (16, 32, 64, 128, 128))
    kwargs.setdefault("fc_dim", 256)
    kwargs.setdefault("drop_rate", 0.2)
    return C3D(num_classes, num_frames, 64, **kwargs)
