"""Clip transforms: `uint8 T×H×W×C` frames → normalized `float C×T×H×W` tensors.

`Preprocess` is the single evaluation/serving preprocessing object (contract): its parameters
are saved in every bundle, so training-time evaluation, `vidlab eval`, `predict` and the server
turn a video into exactly the same tensor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclass
class Preprocess:
    """How a video becomes model input at evaluation time.

    - `num_frames` frames are taken `stride` frames apart (or, with `target_fps`, the stride is
      chosen per video so that sampled frames are `1/target_fps` seconds apart);
    - frames are decoded at `short_side` (the reader's scaler resizes), then centre-cropped to
      `crop_size`×`crop_size` and normalized with `mean`/`std` (0–1 pixel scale);
    - videos shorter than a clip are handled by `short_video`: "loop" repeats them, "pad"
      repeats the last frame.
    """

    num_frames: int = 16
    stride: int = 2
    short_side: int = 128
    crop_size: int = 112
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    target_fps: float | None = None
    short_video: str = "loop"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)

    def stride_for(self, fps: float | None) -> int:
        """Frame step for a video at `fps` (fixed `stride` unless `target_fps` is set)."""
        if self.target_fps and fps and fps > 0:
            return max(1, round(fps / self.target_fps))
        return max(1, self.stride)

    def clip_indices(self, num_video_frames: int, num_clips: int = 1,
                     fps: float | None = None) -> list[np.ndarray]:
        """Frame indices of `num_clips` clips spread uniformly over the video (test-time views)."""
        from vidlab.data.samplers import UniformMultiViewSampler

        sampler = UniformMultiViewSampler(self.num_frames, self.stride_for(fps), num_clips,
                                          short_video=self.short_video)
        return sampler(num_video_frames)

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """`uint8 T×H×W×C` → `float32 C×T×crop×crop` (resize if needed, centre crop, normalize)."""
        x = _to_float_cthw(frames)
        x = resize_short_side(x, self.short_side)
        x = center_crop(x, self.crop_size)
        return normalize(x, self.mean, self.std)


def _to_float_cthw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected frames T×H×W×3, got shape {tuple(t.shape)}")
    return t.permute(3, 0, 1, 2).float().div_(255.0)


def resize_short_side(x: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize `C×T×H×W` so its shorter spatial side is `short_side` (no-op when it already is)."""
    h, w = x.shape[-2:]
    if min(h, w) == short_side:
        return x
    scale = short_side / min(h, w)
    size = (max(short_side, round(h * scale)), max(short_side, round(w * scale)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop the central `size`×`size` window of `C×T×H×W` (one window for every frame)."""
    h, w = x.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., top:top + size, left:left + size]


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel `(x - mean) / std` on `C×T×H×W`."""
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1, 1)
    return (x - m) / s
