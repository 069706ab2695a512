"""Real clips at GAN resolution, held in memory: the GAN's training set and eval reference.

Small datasets (the built-in one: 320 videos → ~60 MB at 16×32×32) fit in RAM as one `uint8`
tensor, which keeps a CPU training step free of decoding. `max_bytes` bounds it: a bigger
dataset raises `DatasetError` instead of swapping the machine to death.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidlab.data.samplers import UniformMultiViewSampler
from vidlab.errors import DatasetError, VidlabError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 4 * 2**30


@dataclass
class ClipSet:
    """`clips` uint8 `N×T×S×S×3`, `labels` int64 `N`, `video` int64 `N` (source entry index)."""

    clips: torch.Tensor
    labels: torch.Tensor
    video: torch.Tensor
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def clip_stride(fps: float | None, target_fps: float | None, stride: int) -> int:
    """Frame step: `round(fps / target_fps)` when a target rate is set, else `stride`."""
    if target_fps and fps and fps > 0:
        return max(1, round(fps / target_fps))
    return max(1, stride)


def load_clips(entries: list[dict[str, Any]], label_names: list[str], *, num_frames: int = 16,
               size: int = 32, stride: int = 2, target_fps: float | None = 12.0,
               clips_per_video: int = 4, max_bytes: int = DEFAULT_MAX_BYTES,
               progress: bool = True) -> ClipSet:
    """Decode `clips_per_video` evenly spread clips of every entry at `size`×`size`.

    Frames are decoded with the short side at `size` (FFmpeg's scaler resizes) and centre
    cropped. Entries whose label is not in `label_names` are ignored; unreadable videos are
    logged and skipped. Raises `DatasetError` when nothing is usable or it would not fit.
    """
    from vidlab.io import VideoReader
    from vidlab.progress import progress as bar

    index = {name: i for i, name in enumerate(label_names)}
    usable = [(i, e) for i, e in enumerate(entries) if str(e.get("label")) in index]
    need = len(usable) * clips_per_video * num_frames * size * size * 3
    if need > max_bytes:
        raise DatasetError(f"{len(usable)} videos × {clips_per_video} clips at {num_frames}×"
                           f"{size}² need {need / 2**30:.1f} GiB in memory (limit "
                           f"{max_bytes / 2**30:.1f} GiB): pass fewer videos or clips_per_video")
    clips, labels, video = [], [], []
    for i, entry in bar(usable, desc="loading clips", enabled=None if progress else False):
        try:
            with VideoReader(entry["path"], size=size) as reader:
                step = clip_stride(reader.fps, target_fps, stride)
                sampler = UniformMultiViewSampler(num_frames, step, clips_per_video)
                views = sampler(len(reader))
                wanted = np.unique(np.concatenate(views))
                frames = reader.get_frames(wanted.tolist())
        except VidlabError as exc:
            log.warning("%s: skipped (%s)", entry["path"], exc)
            continue
        pos = {int(f): k for k, f in enumerate(wanted)}
        for view in views:
            clip = frames[[pos[int(f)] for f in view]]
            clips.append(_center_crop(clip, size))
            labels.append(index[str(entry["label"])])
            video.append(i)
    if not clips:
        raise DatasetError("no usable video with a known label")
    return ClipSet(torch.from_numpy(np.stack(clips)), torch.tensor(labels), torch.tensor(video),
                   list(label_names))


def _center_crop(clip: np.ndarray, size: int) -> np.ndarray:
    h, w = clip.shape[1:3]
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(clip[:, top:top + size, left:left + size])


def to_model_range(clips_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 `B×T×H×W×3` → float `B×3×T×H×W` in [-1, 1] (the generator's output range)."""
    return clips_uint8.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def to_uint8(clips: torch.Tensor) -> torch.Tensor:
    """float `B×3×T×H×W` in [-1, 1] → uint8 `B×T×H×W×3` (what a video file holds)."""
    x = clips.detach().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).contiguous()
