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


class RandomClipSampler:
    """Training: one clip of `num_frames` at `stride`, starting anywhere it fits (temporal
    jitter); without jitter, the centred clip. Short videos follow `short_video`."""

    def __init__(self, num_frames: int, stride: int, jitter: bool = True,
                 short_video: str = "loop"):
        self.num_frames, self.stride, self.jitter = num_frames, max(1, stride), jitter
        self.short_video = short_video

    def __call__(self, num_video_frames: int, rng: np.random.Generator) -> np.ndarray:
        span = (self.num_frames - 1) * self.stride + 1
        room = max(0, num_video_frames - span)
        start = int(rng.integers(0, room + 1)) if self.jitter else room // 2
        if room == 0 and self.jitter and self.short_video == "loop" and num_video_frames > 0:
            start = int(rng.integers(0, num_video_frames))  # any phase of the loop is a clip
        idx = start + np.arange(self.num_frames) * self.stride
        return fit_indices(idx, num_video_frames, self.short_video)


class SegmentSampler:
    """TSN: split the video into `num_segments` equal segments and take one frame from each —
    at a random offset (training) or the segment's centre (evaluation)."""

    def __init__(self, num_segments: int, random_offset: bool = True):
        self.num_segments, self.random_offset = num_segments, random_offset

    def __call__(self, num_video_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
        if num_video_frames <= 0:
            raise ValueError("video has no frames")
        edges = np.linspace(0, num_video_frames, self.num_segments + 1)
        lo, hi = edges[:-1], edges[1:]
        if self.random_offset and rng is not None:
            pos = lo + rng.random(self.num_segments) * (hi - lo)
        else:
            pos = (lo + hi) / 2
        return np.clip(np.floor(pos).astype(np.int64), 0, num_video_frames - 1)


def make_train_sampler(kind: str, num_frames: int, stride: int, jitter: bool = True,
                       short_video: str = "loop"):
    """The training sampler named by `DataConfig.sampling` ("random" or "segments")."""
    if kind == "random":
        return RandomClipSampler(num_frames, stride, jitter=jitter, short_video=short_video)
    if kind == "segments":
        return SegmentSampler(num_frames, random_offset=jitter)
    raise ValueError(f"unknown sampling {kind!r} (random or segments)")


def segment_views(num_video_frames: int, num_segments: int, num_clips: int = 1) -> list[np.ndarray]:
    """Deterministic TSN views: view k of n takes offset (k + 0.5) / n inside every segment."""
    if num_video_frames <= 0:
        raise ValueError("video has no frames")
    edges = np.linspace(0, num_video_frames, num_segments + 1)
    lo, width = edges[:-1], np.diff(edges)
    return [np.clip(np.floor(lo + (k + 0.5) / num_clips * width).astype(np.int64), 0,
                    num_video_frames - 1) for k in range(num_clips)]
