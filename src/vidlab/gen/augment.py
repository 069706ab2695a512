"""DiffAugment for video (Zhao et al. 2020), with one draw per clip shared by all its frames.

Augmenting real and generated clips alike, differentiably, keeps a discriminator trained on a
small dataset from memorising it. Every frame of a clip gets the same colour change and the same
shift, so augmentation never invents motion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def diff_augment(x: torch.Tensor, policy: str = "color,translation",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment `B×3×T×H×W` clips in [-1, 1]; `policy` lists "color" and/or "translation"."""
    if not policy:
        return x
    for name in policy.split(","):
        name = name.strip()
        if name == "color":
            x = _color(x, generator)
        elif name == "translation":
            x = _translation(x, generator)
        elif name:
            raise ValueError(f"unknown DiffAugment policy {name!r} (color, translation)")
    return x


def _rand(b: int, generator: torch.Generator | None, x: torch.Tensor) -> torch.Tensor:
    return torch.rand(b, 1, 1, 1, 1, generator=generator).to(x.device, x.dtype)


def _color(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_rand(b, g, x) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(b, g, x) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    return (x - mean) * (_rand(b, g, x) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    b, c, t, h, w = x.shape
    sy, sx = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = torch.randint(-sy, sy + 1, (b,), generator=g)
    dx = torch.randint(-sx, sx + 1, (b,), generator=g)
    # Zero-pad then gather a shifted window: differentiable, same shift for every frame.
    padded = F.pad(x, (sx, sx, sy, sy))
    rows = (torch.arange(h)[None, :] + sy - dy[:, None]).to(x.device)  # B×H
    cols = (torch.arange(w)[None, :] + sx - dx[:, None]).to(x.device)  # B×W
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 3, 4, 1, 2)[bi, rows[:, :, None], cols[:, None, :]]  # B×H×W×C×T
    return out.permute(0, 3, 4, 1, 2).contiguous()
