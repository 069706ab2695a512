"""The conditional video GAN's networks (MoCoGAN/TGAN line), small enough to train on a CPU.

- `VideoGenerator`: a content latent (one per clip) and a GRU motion latent (one per frame),
  both conditioned on the class, drive a per-frame 2D upsampling stack whose blocks also mix
  neighbouring frames with temporal (3×1×1) convolutions → `B×3×T×H×W` in [-1, 1].
- `VideoDiscriminator`: 3D convolutions over the whole clip (judges motion).
- `ImageDiscriminator`: 2D convolutions over a few sampled frames (judges appearance).

GroupNorm rather than BatchNorm in the generator: a sample must not depend on the other samples
of its batch, and the EMA weights then need no re-estimated batch statistics. Both discriminators are projection discriminators (Miyato & Koyama 2018): the score is
`ψ(h) + <embed(y), h>`, and use spectral norm on every weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class UpBlock(nn.Module):
    """×2 spatial upsampling, 3×3 conv per frame, then (optionally) a residual temporal conv."""

    def __init__(self, c_in: int, c_out: int, temporal: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.GroupNorm(min(8, c_out // 4), c_out)
        self.temporal = nn.Conv3d(c_out, c_out, (3, 1, 1), padding=(1, 0, 0)) if temporal else None

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        # x: (B*T)×C×H×W
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = F.relu(self.norm(self.conv(x)))
        if self.temporal is None:
            return x
        bt, c, h, w = x.shape
        v = x.view(bt // frames, frames, c, h, w).transpose(1, 2)
        v = v + F.relu(self.temporal(v))
        return v.transpose(1, 2).reshape(bt, c, h, w)


class GeneratorBase(nn.Module):
    """What every vidlab video generator shares: the class embedding, the GRU that turns
    per-frame noise into motion states, the width schedule of its 2D upsampling stack, and
    seeded class-conditional sampling. Subclasses set `kind` (the bundle's generator name),
    build their decoder in `_build_decoder` (from `self.chans`) and define `forward`."""

    kind = ""

    def __init__(self, num_classes: int, num_frames: int = 16, size: int = 32,
                 content_dim: int = 64, motion_dim: int = 16, hidden_dim: int = 64,
                 embed_dim: int = 32, width: int = 64):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"generator size must be a power of two >= 8, got {size}")
        self.num_classes, self.num_frames, self.size = num_classes, num_frames, size
        self.content_dim, self.motion_dim = content_dim, motion_dim
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.h0 = nn.Linear(content_dim + embed_dim, hidden_dim)
        self.gru = nn.GRUCell(motion_dim + embed_dim, hidden_dim)
        n_up = int(math.log2(size)) - 2
        self.chans = [max(16, width >> max(0, i - 1)) for i in range(n_up + 1)]
        self._build_decoder()

    def _build_decoder(self) -> None:
        raise NotImplementedError

    def _seed(self, in_features: int) -> None:
        """`fc` + `norm0`: the linear map from a latent vector to the first 4×4 feature map."""
        self.fc = nn.Linear(in_features, self.chans[0] * 16)
        self.norm0 = nn.GroupNorm(min(8, self.chans[0] // 4), self.chans[0])

    def arch_kwargs(self) -> dict[str, int]:
        """The constructor arguments, saved in the generator bundle."""
        return {"num_frames": self.num_frames, "size": self.size,
                "content_dim": self.content_dim, "motion_dim": self.motion_dim,
                "hidden_dim": self.h0.out_features, "embed_dim": self.embed.embedding_dim,
                "width": self.chans[1] if len(self.chans) > 1 else self.chans[0]}

    def motion_states(self, z: torch.Tensor, eps: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """`B×T×hidden`: the GRU run over the per-frame noise, started from content and class."""
        h = torch.tanh(self.h0(torch.cat([z, e], 1)))
        states = []
        for i in range(eps.shape[1]):
            h = self.gru(torch.cat([eps[:, i], e], 1), h)
            states.append(h)
        return torch.stack(states, 1)

    def sample_latents(self, batch: int, generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(batch, self.content_dim, generator=generator, device=device)
        eps = torch.randn(batch, self.num_frames, self.motion_dim, generator=generator,
                          device=device)
        return z, eps

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Clips for `labels` (B), reproducible for a `seed`; `B×3×T×H×W` in [-1, 1]."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z, eps = self.sample_latents(len(labels), g)
        p = next(self.parameters())
        return self(z.to(p.device), eps.to(p.device), labels.to(p.device))


class VideoGenerator(GeneratorBase):
    """`(z_content B×Zc, noise B×T×Zm, labels B) → B×3×T×H×W` clips in [-1, 1]."""

    kind = "mocogan"

    def _build_decoder(self) -> None:
        chans = self.chans
        self._seed(self.content_dim + self.embed.embedding_dim + self.h0.out_features)
        # Motion is mixed across frames up to 16×16; the finest block stays per-frame (on a CPU
        # its temporal conv would cost as much as the rest of the generator).
        self.blocks = nn.ModuleList(UpBlock(chans[i], chans[i + 1], temporal=4 << (i + 1) <= 16)
                                    for i in range(len(chans) - 1))
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, eps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b, t = eps.shape[:2]
        e = self.embed(labels)
        m = self.motion_states(z, eps, e)  # B×T×H
        per_frame = torch.cat([z[:, None].expand(-1, t, -1), e[:, None].expand(-1, t, -1), m], 2)
        x = self.fc(per_frame.reshape(b * t, -1)).view(b * t, self.chans[0], 4, 4)
        x = F.relu(self.norm0(x))
        for block in self.blocks:
            x = block(x, t)
        x = torch.tanh(self.to_rgb(x))
        return x.view(b, t, 3, self.size, self.size).transpose(1, 2).contiguous()


class _Projection(nn.Module):
    """`ψ(h) + <embed(y), h>` with an optional auxiliary class head on the same features."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.linear = spectral_norm(nn.Linear(features, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, features))
        self.aux = nn.Linear(features, num_classes)

    def forward(self, h: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score = self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(1)
        return score, self.aux(h)


class _ConvCritic(nn.Module):
    """Strided spectral-norm convs, sum-pooled, then a projection head → (score, class logits).

    The video and image critics are this one network over 3D or 2D convolutions.
    """

    conv: type[nn.Module]
    pool_dims: tuple[int, ...]

    def __init__(self, num_classes: int, width: int = 32, size: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c = 3, width
        for _ in range(max(2, int(math.log2(size)) - 2)):
            layers += [spectral_norm(self.conv(c_in, c, 4, stride=2, padding=1)),
                       nn.LeakyReLU(0.2)]
            c_in, c = c, min(c * 2, width * 8)
        self.body = nn.Sequential(*layers)
        self.head = _Projection(c_in, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x).sum(dim=self.pool_dims)
        return self.head(h, labels)


class VideoDiscriminator(_ConvCritic):
    """3D-conv critic over `B×3×T×H×W` clips → (score B, class logits B×K)."""

    conv = nn.Conv3d
    pool_dims = (2, 3, 4)


class ImageDiscriminator(_ConvCritic):
    """2D-conv critic over frames: `B×3×H×W` → (score B, class logits B×K)."""

    conv = nn.Conv2d
    pool_dims = (2, 3)


def sample_frames(clips: torch.Tensor, k: int, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """`k` random frames of each clip as a `(B*k)×3×H×W` batch, and the clip index of each."""
    b, _, t = clips.shape[:3]
    idx = torch.randint(0, t, (b, k), generator=generator)
    frames = clips.transpose(1, 2)[torch.arange(b)[:, None], idx]  # B×k×3×H×W
    return frames.reshape(b * k, *clips.shape[1:2], *clips.shape[3:]), \
        torch.arange(b).repeat_interleave(k)
