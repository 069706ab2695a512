"""EnhanceNet: a small spatio-temporal restoration / 2x super-resolution network for CPUs.

Ideas from EDVR/BasicVSR, sized for a laptop: every input frame goes through the same shallow
feature extractor at half resolution (pixel-unshuffle, so the residual trunk costs a quarter of
full resolution and sees twice as far — compression blocks are 8–16 px), the frames' features
are fused early by one 1x1 convolution, a handful of residual blocks refine them, and the output
is a residual added onto the centre input frame (restore) or onto its bicubic upscaling (sr2x).
An optional context branch (`context_blocks`) runs residual blocks at quarter resolution and
adds their upsampled result to the fused features before the trunk: heavy compression smears
whole 16 px macroblocks, and the branch sees ~4x as far for ~20 % more compute.
An optional quality condition (`qp_cond`) tells the network the centre frame's quantiser (the
QP the decoder exports, `quality_vector`): a blind model must guess from the pixels how much of
what it sees is artifact, and over-smooths real texture at moderate QPs.

Input: float `B×C×T×H×W` in [0, 1] (the DESIGN clip layout), T odd. Output: `B×C×sH×sW`.
Any H, W work: the input is reflect-padded to even size and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """conv-act-conv with an identity shortcut (no normalization: it hurts restoration)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class ContextBranch(nn.Module):
    """Residual blocks at half the trunk's resolution; the output starts at zero, so adding the
    branch to a trained model leaves its output unchanged until the branch has learned."""

    def __init__(self, channels: int, num_blocks: int):
        super().__init__()
        wide = channels * 4 // 3 // 4 * 4 or channels
        self.down = nn.Sequential(nn.Conv2d(channels, wide, 3, stride=2, padding=1),
                                  nn.LeakyReLU(0.1, inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(wide) for _ in range(num_blocks)])
        self.up = nn.Sequential(nn.Conv2d(wide, channels * 4, 3, padding=1), nn.PixelShuffle(2))
        nn.init.zeros_(self.up[0].weight)
        nn.init.zeros_(self.up[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.up(self.blocks(self.down(x)))
        return y[..., :h, :w]


class FlowAlign(nn.Module):
    """Warps a neighbour frame's features onto the centre frame's (flow-guided alignment, as in
    BasicVSR, with the flow predicted from the feature pair at quarter resolution instead of a
    separate flow network). The flow starts at zero: an aligned model starts as the unaligned
    one."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(8, channels // 2)
        self.flow = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(hidden, 2, 3, padding=1))
        nn.init.zeros_(self.flow[-1].weight)
        nn.init.zeros_(self.flow[-1].bias)

    def forward(self, centre: torch.Tensor, neighbour: torch.Tensor) -> torch.Tensor:
        h, w = centre.shape[-2:]
        flow = F.interpolate(self.flow(torch.cat([centre, neighbour], 1)), size=(h, w),
                             mode="bilinear", align_corners=False) * 2  # in feature pixels
        ys, xs = torch.meshgrid(torch.arange(h, device=centre.device, dtype=centre.dtype),
                                torch.arange(w, device=centre.device, dtype=centre.dtype),
                                indexing="ij")
        gx = (xs + flow[:, 0]) * (2 / max(w - 1, 1)) - 1
        gy = (ys + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
        return F.grid_sample(neighbour, torch.stack([gx, gy], -1), mode="bilinear",
                             padding_mode="border", align_corners=True)


QP_SCALE = 51.0
"""H.264's and HEVC's largest QP: conditioning QPs are divided by it."""


def quality_vector(qp: float | None, codec: str | None = None) -> list[float]:
    """The condition for a frame of quantiser `qp` from `codec`: `[qp / 51, is_hevc, known]`;
    an unknown QP is all zeros (the model's blind mode, trained on a share of its windows)."""
    from vidlab.enhance.gate import codec_family

    if qp is None:
        return [0.0, 0.0, 0.0]
    return [float(qp) / QP_SCALE, float(codec_family(codec) == "hevc"), 1.0]


class QualityFiLM(nn.Module):
    """Per-channel scale and shift of the features, twice (after fusion, before the head), from
    the quality vector. The last layer starts at zero: a model grown with the condition starts
    exactly as the blind model it was initialised from."""

    def __init__(self, channels: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.LeakyReLU(0.1, inplace=True),
                                 nn.Linear(hidden, 4 * channels))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, quality: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`B×3` → four `B×C×1×1` tensors: scale and shift after fusion, then before the head."""
        return tuple(t[..., None, None] for t in self.net(quality).chunk(4, dim=1))


class EnhanceNet(nn.Module):
    """Few frames in, centre frame out; `scale` 1 (restore) or 2 (sr2x)."""

    def __init__(self, num_frames: int = 5, channels: int = 32, num_blocks: int = 6,
                 scale: int = 1, context_blocks: int = 0, align: bool = False,
                 qp_cond: bool = False, lowcut: int = 0):
        super().__init__()
        if num_frames < 1 or num_frames % 2 == 0:
            raise ValueError(f"num_frames must be odd and >= 1, got {num_frames}")
        if scale not in (1, 2):
            raise ValueError(f"scale must be 1 or 2, got {scale}")
        self.num_frames, self.scale, self.lowcut = num_frames, scale, lowcut
        self.extract = nn.Sequential(  # per frame, shared weights, at half resolution
            nn.Conv2d(3 * 4, channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))
        self.align = FlowAlign(channels) if align and num_frames > 1 else None
        self.fuse = nn.Sequential(  # early temporal fusion of all frames' features
            nn.Conv2d(channels * num_frames, channels, 1), nn.LeakyReLU(0.1, inplace=True))
        self.context = ContextBranch(channels, context_blocks) if context_blocks else None
        self.trunk = nn.Sequential(*[ResidualBlock(channels) for _ in range(num_blocks)])
        self.trunk_out = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = QualityFiLM(channels) if qp_cond else None
        up = 2 * scale  # back from half resolution, then the SR factor
        self.head = nn.Sequential(nn.Conv2d(channels, 3 * up * up, 3, padding=1),
                                  nn.PixelShuffle(up))
        nn.init.zeros_(self.head[0].weight)  # start as the identity / bicubic baseline
        nn.init.zeros_(self.head[0].bias)

    @property
    def qp_conditioned(self) -> bool:
        return self.film is not None

    @property
    def lowcut(self) -> int:
        """Width (odd px) of the box mean removed from the residual (`box_mean`); 0: none."""
        return self._lowcut

    @lowcut.setter
    def lowcut(self, width: int) -> None:
        self._lowcut = check_lowcut(width)

    def forward(self, x: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        """`quality`: `B×3` quality vectors of the centre frames (`quality_vector`), used by a
        `qp_cond` model (None: unknown quality) and ignored by a blind one."""
        b, c, t, h, w = x.shape
        if t != self.num_frames or c != 3:
            raise ValueError(f"expected B×3×{self.num_frames}×H×W, got {tuple(x.shape)}")
        centre = x[:, :, t // 2]
        ph, pw = h % 2, w % 2
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        if ph or pw:
            frames = F.pad(frames, (0, pw, 0, ph), mode="replicate")
        feats = self.extract(F.pixel_unshuffle(frames, 2))
        fc, fh, fw = feats.shape[1:]
        if self.align is not None:
            feats = self._aligned(feats.reshape(b, t, fc, fh, fw))
        feats = feats.reshape(b, t * fc, fh, fw)
        fused = self.fuse(feats)
        film = None
        if self.film is not None:
            if quality is None:
                quality = x.new_zeros(b, 3)
            film = self.film(quality.to(x.dtype))
            fused = fused * (1 + film[0]) + film[1]
        if self.context is not None:
            fused = fused + self.context(fused)
        fused = fused + self.trunk_out(self.trunk(fused))
        if film is not None:
            fused = fused * (1 + film[2]) + film[3]
        residual = self.head(fused)[..., : h * self.scale, : w * self.scale]
        if self.lowcut:
            residual = residual - box_mean(residual, self.lowcut)
        return base_frame(centre, self.scale) + residual


    def _aligned(self, feats: torch.Tensor) -> torch.Tensor:
        """`B×T×C×h×w` features with every neighbour warped onto the centre frame."""
        b, t = feats.shape[:2]
        c = t // 2
        others = [i for i in range(t) if i != c]
        centre = feats[:, c]
        neighbours = feats[:, others].reshape(b * len(others), *feats.shape[2:])
        warped = self.align(centre.repeat_interleave(len(others), 0), neighbours)
        warped = warped.reshape(b, len(others), *feats.shape[2:])
        return torch.cat([warped[:, :c], centre[:, None], warped[:, c:]], 1)


def check_lowcut(width: int, error: type[Exception] = ValueError) -> int:
    """`width` if it is a valid low-cut (0, or an odd number of pixels), else `error`."""
    if width < 0 or (width and width % 2 == 0):
        raise error(f"lowcut must be 0 or an odd width in pixels, got {width}")
    return width


def box_mean(x: torch.Tensor, width: int) -> torch.Tensor:
    """Each pixel's mean over the odd `width`×`width` box around it (edges replicated).

    `EnhanceNet(lowcut=w)` removes this from its residual: a codec keeps a frame's low
    frequencies (its QP spends bits on detail first), so a correction smoother than the box is
    a level shift the network made up — on saturated, dark or flat scenes it cost up to 0.9 dB.

    Computed from running sums along each axis (one subtraction per pixel, whatever the width;
    float64 so the differences of large sums stay exact) rather than `avg_pool2d`, whose
    width² additions per pixel cost the model a seventh of its speed at 17 px
    (`python benchmarks/enhance.py --variants`).
    """
    r = width // 2
    # one extra leading row/column, so that sum[i + width] - sum[i] is the box ending at i + r
    s = F.pad(x, (r + 1, r, r + 1, r), mode="replicate").double().cumsum(-1)
    s = (s[..., width:] - s[..., :-width]).cumsum(-2)
    return ((s[..., width:, :] - s[..., :-width, :]) / (width * width)).to(x.dtype)


def base_frame(centre: torch.Tensor, scale: int) -> torch.Tensor:
    """What the network refines: the centre frame itself, or its bicubic 2x upscaling."""
    if scale == 1:
        return centre
    return F.interpolate(centre, scale_factor=scale, mode="bicubic", align_corners=False)


def build_enhancer(num_frames: int = 5, channels: int = 32, num_blocks: int = 6,
                   scale: int = 1, context_blocks: int = 0, align: bool = False,
                   qp_cond: bool = False, lowcut: int = 0) -> EnhanceNet:
    """Builder with plain keyword arguments (the bundle's `model.kwargs`)."""
    return EnhanceNet(num_frames=num_frames, channels=channels, num_blocks=num_blocks, scale=scale,
                      context_blocks=context_blocks, align=align, qp_cond=qp_cond, lowcut=lowcut)
