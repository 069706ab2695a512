"""Clip samplers over frame indices: small classes, one job each, unaware of decoding."""

from __future__ import annotations

import numpy as np


def fit_indices(indices: np.ndarray, num_video_frames: int, short_video: str = "loop") -> np.ndarray:
    """Map indices past the end of a short video back into it ("loop" wraps, "pad" clamps)."""
    if num_video_frames <= 0:
        raise ValueError("video has no frames")
    if short_video == "loop":
        return np.mod(indices, num_video_frames)
    if short_video == "pad":
        return np.clip(indices, 0, num_video_frames - 1)
    raise ValueError(f"unknown short_video policy {short_video!r} (loop or pad)")


class UniformMultiViewSampler:
    """`num_clips` clips of `num_frames` at `stride`, spread evenly over the video (testing)."""

    def __init__(self, num_frames: int, stride: int, num_clips: int = 1, short_video: str = "loop"):
        self.num_frames, self.stride, self.num_clips = num_frames, stride, num_clips
        self.short_video = short_video

    def __call__(self, num_video_frames: int) -> list[np.ndarray]:
        span = (self.num_frames - 1) * self.stride + 1
        room = max(0, num_video_frames - span)
        if self.num_clips == 1:
            starts = [room // 2]
        else:
            starts = [round(room * i / (self.num_clips - 1)) for i in range(self.num_clips)]
        base = np.arange(self.num_frames) * self.stride
        return [fit_indices(s + base, num_video_frames, self.short_video) for s in starts]
