"""A layered video generator: a background, a sprite, and motion as per-frame similarity warps.

The MoCoGAN generator (`nets.VideoGenerator`) must *draw* every frame anew and learn that an
object persists; on a CPU budget it learns appearance long before coherent motion. Here the
content latent is decoded once per clip into a background, a foreground sprite and its alpha
mask (2D upsampling, like one frame of the MoCoGAN generator), and the GRU's per-frame motion
latents become velocities of a similarity transform — translation, rotation and scale about the
sprite's centre — integrated over time and applied by differentiable warping (`grid_sample`,
wrapping at the borders as objects leaving one side re-enter on the other). Motion is then
coherent by construction and the class only has to pick the velocities. The prior suits
object-motion datasets (sprites, rigid objects over a still or slow background); for free-form
appearance changes use the default `mocogan` generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.gen.nets import GeneratorBase, UpBlock

MAX_STEP = (0.25, 0.25, 0.15, 0.4)
"""Largest per-frame velocity: x and y shift (in half-widths), log-scale, rotation (radians)."""


class LayeredVideoGenerator(GeneratorBase):
    """`(z_content B×Zc, noise B×T×Zm, labels B) → B×3×T×H×W` clips in [-1, 1]."""

    kind = "layered"

    def _build_decoder(self) -> None:
        chans = self.chans
        self.velocity = nn.Linear(self.h0.out_features, 4)
        self._seed(self.content_dim + self.embed.embedding_dim)
        self.blocks = nn.ModuleList(UpBlock(chans[i], chans[i + 1], temporal=False)
                                    for i in range(len(chans) - 1))
        self.to_layers = nn.Conv2d(chans[-1], 7, 3, padding=1)  # background 3, sprite 3, alpha 1
        self.register_buffer("max_step", torch.tensor(MAX_STEP), persistent=False)

    def layers(self, z: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Background `B×3×S×S`, sprite `B×3×S×S` (both in [-1, 1]) and alpha `B×1×S×S`."""
        x = self.fc(torch.cat([z, e], 1)).view(len(z), self.chans[0], 4, 4)
        x = F.relu(self.norm0(x))
        for block in self.blocks:
            x = block(x, 1)
        out = self.to_layers(x)
        return torch.tanh(out[:, :3]), torch.tanh(out[:, 3:6]), torch.sigmoid(out[:, 6:])

    def motion(self, z: torch.Tensor, eps: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Per-frame pose `B×T×4` (x, y, log-scale, angle), zero at the first frame."""
        v = torch.tanh(self.velocity(self.motion_states(z, eps, e))) * self.max_step
        return torch.cumsum(v, 1) - v[:, :1]

    def forward(self, z: torch.Tensor, eps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b, t = eps.shape[:2]
        s = self.size
        e = self.embed(labels)
        background, sprite, alpha = self.layers(z, e)
        pose = self.motion(z, eps, e).reshape(b * t, 4)
        centre = _centroid(alpha).repeat_interleave(t, 0)  # B*T×2
        grid = F.affine_grid(_inverse_similarity(pose, centre), [b * t, 4, s, s],
                             align_corners=False)
        grid = torch.remainder(grid + 1, 2) - 1  # wrap around the borders
        layer = torch.cat([sprite, alpha], 1).repeat_interleave(t, 0)
        warped = F.grid_sample(layer, grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        a = warped[:, 3:]
        frames = a * warped[:, :3] + (1 - a) * background.repeat_interleave(t, 0)
        return frames.view(b, t, 3, s, s).transpose(1, 2).contiguous()


def _centroid(alpha: torch.Tensor) -> torch.Tensor:
    """Alpha-weighted centre `B×2` (x, y) in grid_sample's normalized coordinates."""
    s = alpha.shape[-1]
    pos = (torch.arange(s, device=alpha.device, dtype=alpha.dtype) * 2 + 1) / s - 1
    w = alpha[:, 0] / alpha[:, 0].sum((1, 2), keepdim=True).clamp_min(1e-6)
    return torch.stack([(w * pos[None, None, :]).sum((1, 2)),
                        (w * pos[None, :, None]).sum((1, 2))], 1)


def _inverse_similarity(pose: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """`N×2×3` thetas mapping output to source coordinates for a sprite moved by `pose`:
    rotate by angle and scale by exp(log-scale) about `centre`, then shift by (x, y)."""
    shift, log_scale, angle = pose[:, :2], pose[:, 2], pose[:, 3]
    inv = torch.exp(-log_scale)
    cos, sin = torch.cos(angle) * inv, torch.sin(angle) * inv
    a = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # N×2×2
    offset = centre - (a @ (centre + shift).unsqueeze(2)).squeeze(2)
    return torch.cat([a, offset.unsqueeze(2)], 2)
