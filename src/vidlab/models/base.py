"""The one interface every vidlab model has (timm's shape)."""

from __future__ import annotations

import torch
from torch import nn


class VideoModel(nn.Module):
    """Base class: `B×C×T×H×W` float in, `B×num_classes` logits out.

    Subclasses implement `forward_features` (→ pooled features `B×num_features`) and own a
    `head` (`nn.Linear`, maybe behind dropout) used by `forward_head`. torchvision-compatible
    models name their head `fc` and alias `head` to it.
    """

    num_features: int
    default_num_frames: int = 16
    default_size: int = 112

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def get_classifier(self) -> nn.Linear:
        return self.head if hasattr(self, "head") else self.fc  # type: ignore[return-value]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        drop = getattr(self, "head_drop", None)
        if drop is not None:
            features = drop(features)
        return self.get_classifier()(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for `num_classes` (fine-tuning)."""
        old = self.get_classifier()
        new = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
        name = "head" if hasattr(self, "head") and isinstance(self.head, nn.Linear) else "fc"
        setattr(self, name, new)
        self.num_classes = num_classes

    def input_spec(self) -> dict[str, int]:
        return {"num_frames": self.default_num_frames, "size": self.default_size, "channels": 3}
