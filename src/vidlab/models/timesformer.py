"""TimeSformer (Bertasius et al. 2021): patch (tubelet) embedding + divided space-time attention.

Each block attends over time (the same patch across frames), then over space (all patches of
one frame plus the class token), then applies an MLP. Attention is
`F.scaled_dot_product_attention` (flash/memory-efficient kernels on GPUs); `grad_checkpointing`
trades compute for memory when training large presets. Position embeddings are interpolated
when the input grid differs from the one the model was built for, so `timesformer_base` also
runs on 8×64² clips.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidlab.errors import ModelError
from vidlab.models.base import VideoModel
from vidlab.models.layers import DropPath, check_rate, drop_path_schedule
from vidlab.models.registry import register_model


class Attention(nn.Module):
    """Multi-head self-attention over `M×L×D` token sets."""

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ModelError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, length, dim = x.shape
        qkv = self.qkv(x).reshape(m, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v,
                                             dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(m, length, dim))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(drop),
                         nn.Linear(hidden, dim), nn.Dropout(drop))


class DividedBlock(nn.Module):
    """Temporal attention → spatial attention (with the class token) → MLP, each residual."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm_t = nn.LayerNorm(dim, eps=1e-6)
        self.attn_t = Attention(dim, num_heads, attn_drop)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        cls, tokens = x[:, :1], x[:, 1:]                               # B×1×D, B×(T·N)×D
        d = x.shape[2]
        n = tokens.shape[1] // t
        # Time: each patch position attends over the T frames.
        xt = tokens.reshape(-1, t, n, d).transpose(1, 2).reshape(-1, t, d)           # (B·N)×T×D
        xt = self.temporal_fc(self.attn_t(self.norm_t(xt)))
        xt = xt.reshape(-1, n, t, d).transpose(1, 2).reshape(-1, t * n, d)
        tokens = tokens + self.drop_path(xt)
        # Space: each frame's patches attend to each other and to the class token.
        xs = tokens.reshape(-1, n, d)                                                 # (B·T)×N×D
        cls_t = cls.unsqueeze(1).expand(-1, t, -1, -1).reshape(-1, 1, d)
        xs = self.attn(self.norm1(torch.cat([cls_t, xs], dim=1)))
        cls_out = xs[:, :1].reshape(-1, t, 1, d).mean(dim=1)
        xs = xs[:, 1:].reshape(-1, t * n, d)
        x = torch.cat([cls, tokens], dim=1) + self.drop_path(torch.cat([cls_out, xs], dim=1))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TimeSformer(VideoModel):
    """Tubelet embedding, learned space + time position embeddings, divided blocks, cls head."""

    def __init__(self, num_classes: int = 400, num_frames: int = 8, img_size: int = 224,
                 patch_size: int = 16, tubelet: int = 1, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, in_channels: int = 3,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 grad_checkpointing: bool = False):
        super().__init__()
        if img_size % patch_size or num_frames % tubelet:
            raise ModelError(f"input {num_frames}×{img_size}² is not divisible into "
                             f"{tubelet}×{patch_size}² tubelets")
        self.default_num_frames, self.default_size = num_frames, img_size
        self.in_channels, self.num_classes = in_channels, num_classes
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = nn.Conv3d(in_channels, embed_dim, (tubelet, patch_size, patch_size),
                                     (tubelet, patch_size, patch_size))
        grid = img_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames // tubelet, embed_dim))
        self.pos_drop = nn.Dropout(check_rate("drop_rate", drop_rate))
        rates = drop_path_schedule(depth, check_rate("drop_path_rate", drop_path_rate))
        self.blocks = nn.ModuleList(
            DividedBlock(embed_dim, num_heads, mlp_ratio, drop_rate, attn_drop_rate, r)
            for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.num_features = embed_dim
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.cls_token, self.pos_embed, self.time_embed):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def _position(self, tokens: torch.Tensor) -> torch.Tensor:
        """Add space and time embeddings to `B×T×N×D` tokens, resized if the grid differs."""
        t, n, d = tokens.shape[1], tokens.shape[2], tokens.shape[3]
        pos = self.pos_embed[:, 1:]
        if n != pos.shape[1]:
            side, new = int(round(pos.shape[1] ** 0.5)), int(round(n ** 0.5))
            pos = pos.reshape(1, side, side, d).permute(0, 3, 1, 2)
            pos = F.interpolate(pos, size=(new, new), mode="bilinear", align_corners=False)
            pos = pos.permute(0, 2, 3, 1).reshape(1, new * new, d)
        time = self.time_embed
        if t != time.shape[1]:
            time = F.interpolate(time.transpose(1, 2), size=t, mode="linear",
                                 align_corners=False).transpose(1, 2)
        return tokens + pos.unsqueeze(1) + time.unsqueeze(2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(3).permute(0, 2, 3, 1)   # B×T×N×D
        t = tokens.shape[1]
        tokens = self._position(tokens).flatten(1, 2)                  # B×(T·N)×D
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        x = self.pos_drop(torch.cat([cls, tokens], dim=1))
        for block in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, t, use_reentrant=False)
            else:
                x = block(x, t)
        return self.norm(x)[:, 0]

    def input_spec(self) -> dict[str, int]:
        return {"num_frames": self.default_num_frames, "size": self.default_size,
                "channels": self.in_channels}


_PRESETS = {
    "tiny": dict(embed_dim=192, depth=4, num_heads=3, patch_size=8, img_size=64),
    "small": dict(embed_dim=384, depth=12, num_heads=6, patch_size=16, img_size=224),
    "base": dict(embed_dim=768, depth=12, num_heads=12, patch_size=16, img_size=224),
}


def _timesformer(preset: str, num_classes: int, num_frames: int, **kwargs) -> TimeSformer:
    return TimeSformer(num_classes, num_frames, **{**_PRESETS[preset], **kwargs})


@register_model("timesformer", num_frames=8, size=64)
def timesformer_tiny(num_classes: int = 8, num_frames: int = 8, **kwargs) -> TimeSformer:
    """TimeSformer-tiny: 192-d, 4 divided blocks, 8×8 patches on 8×64²: CPU-sized."""
    return _timesformer("tiny", num_classes, num_frames, **kwargs)


@register_model("timesformer", num_frames=8, size=224)
def timesformer_small(num_classes: int = 400, num_frames: int = 8, **kwargs) -> TimeSformer:
    """TimeSformer-small: 384-d, 12 divided blocks, 16×16 patches on 8×224²."""
    return _timesformer("small", num_classes, num_frames, **kwargs)


@register_model("timesformer", num_frames=8, size=224)
def timesformer_base(num_classes: int = 400, num_frames: int = 8, **kwargs) -> TimeSformer:
    """TimeSformer-base (the paper's): 768-d, 12 divided blocks, 16×16 patches on 8×224²."""
    return _timesformer("base", num_classes, num_frames, **kwargs)
