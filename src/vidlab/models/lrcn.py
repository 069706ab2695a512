"""LRCN (Donahue et al. 2015): a 2D CNN on every frame feeding a recurrent network (GRU/LSTM).

The classic CNN+RNN for video: per-frame ResNet features, a recurrent layer over time, and the
mean of its per-step outputs (the paper averages per-step predictions) as the clip feature.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlab.errors import ModelError
from vidlab.models.base import VideoModel
from vidlab.models.layers import check_rate, init_weights
from vidlab.models.registry import register_model
from vidlab.models.resnet2d import frames_to_batch, resnet2d


class LRCN(VideoModel):
    """Per-frame 2D ResNet → GRU/LSTM over time → mean of the outputs → linear head."""

    def __init__(self, depth: int = 18, num_classes: int = 400, num_frames: int = 16,
                 size: int = 112, rnn: str = "gru", hidden_size: int = 512, rnn_layers: int = 1,
                 bidirectional: bool = False, widths: Sequence[int] | None = None,
                 in_channels: int = 3, drop_rate: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        if rnn not in ("gru", "lstm"):
            raise ModelError(f"rnn must be 'gru' or 'lstm', got {rnn!r}")
        self.default_num_frames, self.default_size = num_frames, size
        self.in_channels, self.num_classes = in_channels, num_classes
        self.backbone = resnet2d(depth, widths, in_channels=in_channels,
                                 drop_path_rate=check_rate("drop_path_rate", drop_path_rate))
        cell = nn.GRU if rnn == "gru" else nn.LSTM
        self.rnn = cell(self.backbone.num_features, hidden_size, num_layers=rnn_layers,
                        batch_first=True, bidirectional=bidirectional)
        self.num_features = hidden_size * (2 if bidirectional else 1)
        self.head_drop = nn.Dropout(check_rate("drop_rate", drop_rate))
        self.head = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        per_frame = self.backbone(frames_to_batch(x))
        seq = per_frame.reshape(-1, t, self.backbone.num_features)   # B×T×F
        outputs, _ = self.rnn(seq)
        return outputs.mean(dim=1)

    def input_spec(self) -> dict[str, int]:
        return {"num_frames": self.default_num_frames, "size": self.default_size,
                "channels": self.in_channels}


@register_model("lrcn", num_frames=16, size=112)
def lrcn_r18(num_classes: int = 400, num_frames: int = 16, **kwargs) -> LRCN:
    """LRCN: ResNet-18 per frame + a 512-unit GRU (`rnn="lstm"` for an LSTM)."""
    return LRCN(18, num_classes, num_frames, 112, **kwargs)


@register_model("lrcn", num_frames=16, size=64)
def lrcn_tiny(num_classes: int = 8, num_frames: int = 16, **kwargs) -> LRCN:
    """LRCN on a ResNet at widths 16-32-64-128 + a 128-unit GRU: CPU-sized."""
    kwargs.setdefault("widths", (16, 32, 64, 128))
    kwargs.setdefault("hidden_size", 128)
    return LRCN(10, num_classes, num_frames, 64, **kwargs)
