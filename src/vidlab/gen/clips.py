"""Real clips at GAN resolution, held in memory: the GAN's training set and eval reference.

They are made by the one clip path (`vidlab.data.clips.load_clips`, raw): frames decoded with
the short side at `size` (FFmpeg's scaler resizes), `clips_per_video` views spread evenly over
each video (`UniformMultiViewSampler`), centre-cropped to `size`×`size`, kept as `uint8`.
Small datasets (the built-in one: 320 videos → ~60 MB at 16×32×32) fit in RAM, which keeps a
CPU training step free of decoding. `max_bytes` bounds it: a bigger dataset raises
`DatasetError` instead of swapping the machine to death.
"""

from __future__ import annotations

from typing import Any

import torch

from vidlab.data.clips import ClipSet, load_clips
from vidlab.data.samplers import UniformMultiViewSampler
from vidlab.data.transforms import Preprocess

DEFAULT_MAX_BYTES = 4 * 2**30


def gan_preprocess(num_frames: int = 16, size: int = 32, stride: int = 2,
                   target_fps: float | None = 12.0) -> Preprocess:
    """The preprocessing of GAN clips: `num_frames` frames at `stride` (or `target_fps`),
    decoded at short side `size` and centre-cropped to `size`×`size`."""
    return Preprocess(num_frames=num_frames, stride=stride, short_side=size, crop_size=size,
                      target_fps=target_fps, short_video="loop")


def real_clips(entries: list[dict[str, Any]], label_names: list[str], *, num_frames: int = 16,
               size: int = 32, stride: int = 2, target_fps: float | None = 12.0,
               clips_per_video: int = 4, max_bytes: int = DEFAULT_MAX_BYTES,
               progress: bool = True) -> ClipSet:
    """`clips_per_video` evenly spread `uint8 T×S×S×3` clips of every entry (`ClipSet.clips`
    is `N×T×S×S×3`, `targets` the class, `video` the entry).

    Entries whose label is not in `label_names` are ignored; unreadable videos are logged and
    skipped. Raises `DatasetError` when nothing is usable or it would not fit in `max_bytes`.
    """
    pre = gan_preprocess(num_frames, size, stride, target_fps)
    return load_clips(entries, pre, UniformMultiViewSampler(pre, clips_per_video),
                      labels=list(label_names), raw=True, keep_unknown=False,
                      max_bytes=max_bytes, progress=progress)


def to_model_range(clips_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 `B×T×H×W×3` → float `B×3×T×H×W` in [-1, 1] (the generator's output range)."""
    return torch.as_tensor(clips_uint8).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def to_uint8(clips: torch.Tensor) -> torch.Tensor:
    """float `B×3×T×H×W` in [-1, 1] → uint8 `B×T×H×W×3` (what a video file holds)."""
    x = clips.detach().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).contiguous()
