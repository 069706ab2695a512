"""TSN (Wang et al. 2016) and TSM (Lin et al. 2019): a 2D ResNet on every frame, averaged.

TSN's average consensus is blind to frame order by design (the cheap baseline); TSM shifts
part of the channels between neighbouring frames inside each residual block, which gives the
same network temporal modelling at zero extra FLOPs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.models.base import VideoModel
from vidlab.models.layers import check_rate, init_weights
from vidlab.models.registry import register_model
from vidlab.models.resnet2d import frames_to_batch, resnet2d


class TSN(VideoModel):
    """Per-frame 2D ResNet + average consensus over time (+ temporal shift when `shift`)."""

    def __init__(self, depth: int = 18, num_classes: int = 400, num_frames: int = 8,
                 size: int = 224, shift: bool = False, widths: Sequence[int] | None = None,
                 in_channels: int = 3, drop_rate: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        self.default_num_frames, self.default_size = num_frames, size
        self.in_channels, self.num_classes = in_channels, num_classes
        self.backbone = resnet2d(depth, widths, in_channels=in_channels, shift=shift,
                                 drop_path_rate=check_rate("drop_path_rate", drop_path_rate))
        self.num_features = self.backbone.num_features
        self.head_drop = nn.Dropout(check_rate("drop_rate", drop_rate))
        self.head = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        self.backbone.set_num_frames(t)
        per_frame = self.backbone(frames_to_batch(x))              # (B·T)×F
        return per_frame.reshape(-1, t, self.num_features).mean(dim=1)

    def input_spec(self) -> dict[str, int]:
        return {"num_frames": self.default_num_frames, "size": self.default_size,
                "channels": self.in_channels}


_TINY = (16, 32, 64, 128)


@register_model("tsn", num_frames=8, size=224)
def tsn_r18(num_classes: int = 400, num_frames: int = 8, **kwargs) -> TSN:
    """TSN with a ResNet-18 per frame, average consensus."""
    return TSN(18, num_classes, num_frames, 224, **kwargs)


@register_model("tsn", num_frames=8, size=224)
def tsn_r50(num_classes: int = 400, num_frames: int = 8, **kwargs) -> TSN:
    """TSN with a ResNet-50 per frame, average consensus."""
    return TSN(50, num_classes, num_frames, 224, **kwargs)


@register_model("tsm", num_frames=8, size=224)
def tsm_r18(num_classes: int = 400, num_frames: int = 8, **kwargs) -> TSN:
    """TSM: ResNet-18 with a temporal shift in every residual block."""
    return TSN(18, num_classes, num_frames, 224, shift=True, **kwargs)


@register_model("tsm", num_frames=8, size=224)
def tsm_r50(num_classes: int = 400, num_frames: int = 8, **kwargs) -> TSN:
    """TSM: ResNet-50 with a temporal shift in every residual block."""
    return TSN(50, num_classes, num_frames, 224, shift=True, **kwargs)


@register_model("tsn", num_frames=16, size=64)
def tsn_tiny(num_classes: int = 8, num_frames: int = 16, **kwargs) -> TSN:
    """TSN on a 4-stage ResNet at widths 16-32-64-128 (CPU-sized; frame-order blind)."""
    kwargs.setdefault("widths", _TINY)
    return TSN(10, num_classes, num_frames, 64, **kwargs)


@register_model("tsm", num_frames=16, size=64)
def tsm_tiny(num_classes: int = 8, num_frames: int = 16, **kwargs) -> TSN:
    """TSM on a 4-stage ResNet at widths 16-32-64-128 (CPU-sized)."""
    kwargs.setdefault("widths", _TINY)
    return TSN(10, num_classes, num_frames, 64, shift=True, **kwargs)
