"""Clip samplers: which frames of a video make each clip a model sees.

A sampler is a pure function of (video length, fps, the resolved `Preprocess`) → a list of
`ClipPlan`s (frame indices in presentation order, plus the time span they stand for);
`num_views` says how many plans it makes per video (None: it depends on the video). It knows
nothing of decoding, is built once from the preprocessing, and is never changed per item, so
the same call gives the same clips in training, evaluation, `predict`, the server, a stream or
an index. Four samplers, one job each (PyTorchVideo's clip samplers, over frame indices):

- `RandomClipSampler` — training, `sampling="clips"`: one clip of `num_frames` frames at the
  stride (or `target_fps`), starting anywhere it fits (temporal jitter);
- `SegmentSampler` — `sampling="segments"` (TSN, "whole-clip uniform"): the video cut into
  `num_frames` equal segments, one frame from each; one random offset shared by all segments
  in training (evenly spaced frames at a random phase), evenly placed offsets for each
  evaluation view;
- `UniformMultiViewSampler` — evaluation, `sampling="clips"`: N clips spread evenly from the
  first frame to the last (the N of N×M test views; the M spatial crops are the transform's);
- `SlidingWindowSampler` — long videos: one clip per time window (`predict`'s timeline, the
  server; live streams and library indexes build on it).

The factories `train_sampler`, `view_sampler` and `window_sampler` pick the class that fits a
`Preprocess.sampling`, so callers never branch on the sampling word themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from vidlab.data.transforms import Preprocess


@dataclass(frozen=True)
class ClipPlan:
    """One clip: its time span in seconds and its frame indices (int64, presentation order)."""

    start: float
    end: float
    indices: np.ndarray


class ClipSampler(Protocol):
    """`sampler(num_frames, fps, rng=..., timestamps=...) -> [ClipPlan, ...]`.

    `num_frames` is the video's frame count, `fps` its frame rate (None: unknown, the fixed
    stride is used), `rng` the generator of a random sampler (ignored by deterministic ones),
    `timestamps` the seconds of every frame (exact time spans in variable-frame-rate video;
    without them frame `i` is at `i / fps`).
    """

    def __call__(self, num_frames: int, fps: float | None = None, *,
                 rng: np.random.Generator | None = None,
                 timestamps: np.ndarray | None = None) -> list[ClipPlan]: ...


def fit_indices(indices: np.ndarray, num_video_frames: int, short_video: str = "loop") -> np.ndarray:
    """Map indices past the end of a short video back into it ("loop" wraps, "pad" clamps)."""
    if num_video_frames <= 0:
        raise ValueError("video has no frames")
    if short_video == "loop":
        return np.mod(indices, num_video_frames)
    if short_video == "pad":
        return np.clip(indices, 0, num_video_frames - 1)
    raise ValueError(f"unknown short_video policy {short_video!r} (loop or pad)")


def plan(indices: np.ndarray, fps: float | None, timestamps: np.ndarray | None = None) -> ClipPlan:
    """A `ClipPlan` for `indices`: from its first frame's time to the end of its last frame."""
    idx = np.asarray(indices, np.int64)
    lo, hi = int(idx.min()), int(idx.max())
    if timestamps is not None and len(timestamps) > hi:
        step = 1.0 / fps if fps else 0.0
        end = float(timestamps[hi + 1]) if hi + 1 < len(timestamps) else float(timestamps[hi]) + step
        return ClipPlan(round(float(timestamps[lo]), 6), round(end, 6), idx)
    if fps:
        return ClipPlan(round(lo / fps, 6), round((hi + 1) / fps, 6), idx)
    return ClipPlan(0.0, 0.0, idx)


def _check_length(num_frames: int) -> None:
    if num_frames <= 0:
        raise ValueError("video has no frames")


def _room(pre: Preprocess, num_frames: int, fps: float | None) -> tuple[int, int]:
    """`(stride, room)`: the frame step at `fps` and how many start positions beyond the first a
    contiguous clip has in the video (0: it fits once, or the video is too short)."""
    _check_length(num_frames)
    stride = pre.stride_for(fps)
    return stride, max(0, num_frames - ((pre.num_frames - 1) * stride + 1))


def _clip(pre: Preprocess, start: int, stride: int, num_frames: int, fps: float | None,
          timestamps: np.ndarray | None) -> ClipPlan:
    """The contiguous clip starting at `start` (short videos per `pre.short_video`)."""
    idx = fit_indices(start + np.arange(pre.num_frames) * stride, num_frames, pre.short_video)
    return plan(idx, fps, timestamps)


class RandomClipSampler:
    """Training, `sampling="clips"`: one clip of `pre.num_frames` frames `pre.stride_for(fps)`
    apart, starting anywhere it fits (`jitter`), else the centred clip. Short videos follow
    `pre.short_video` (with "loop" and jitter, any phase of the loop is a clip)."""

    num_views = 1

    def __init__(self, pre: Preprocess, jitter: bool = True):
        self.pre, self.jitter = pre, jitter

    def __call__(self, num_frames: int, fps: float | None = None, *,
                 rng: np.random.Generator | None = None,
                 timestamps: np.ndarray | None = None) -> list[ClipPlan]:
        stride, room = _room(self.pre, num_frames, fps)
        jitter = self.jitter and rng is not None
        start = int(rng.integers(0, room + 1)) if jitter else room // 2
        if room == 0 and jitter and self.pre.short_video == "loop":
            start = int(rng.integers(0, num_frames))  # any phase of the loop is a clip
        return [_clip(self.pre, start, stride, num_frames, fps, timestamps)]


class SegmentSampler:
    """`sampling="segments"` (TSN): `pre.num_frames` equal segments over the whole video, one
    frame from each. With `random` and an `rng` (training) the frames sit at one random offset
    shared by every segment; otherwise view k of `views` sits at offset (k + 0.5) / views, so
    one view takes every segment's centre and several views interleave.

    One shared offset, not TSN's independent one per segment: a 3D model reads motion from the
    step between neighbouring frames, and independent offsets make that step anything from 0
    to 2 segments, so slow motion's speed becomes noise (see docs/train.md, "Evidence")."""

    def __init__(self, pre: Preprocess, views: int = 1, random: bool = False):
        if views < 1:
            raise ValueError(f"views must be at least 1, got {views}")
        self.pre, self.views, self.random = pre, views, random
        self.num_views = 1 if random else views

    def __call__(self, num_frames: int, fps: float | None = None, *,
                 rng: np.random.Generator | None = None,
                 timestamps: np.ndarray | None = None) -> list[ClipPlan]:
        _check_length(num_frames)
        segments = self.pre.num_frames
        edges = np.linspace(0, num_frames, segments + 1)
        lo, width = edges[:-1], np.diff(edges)
        if self.random and rng is not None:
            offsets = [np.full(segments, rng.random())]
        else:
            offsets = [np.full(segments, (k + 0.5) / self.views) for k in range(self.views)]
        return [plan(np.clip(np.floor(lo + o * width).astype(np.int64), 0, num_frames - 1),
                     fps, timestamps) for o in offsets]


class UniformMultiViewSampler:
    """Evaluation, `sampling="clips"`: `clips` clips of `pre.num_frames` frames at
    `pre.stride_for(fps)`, spread evenly from the start of the video to its end (one clip: the
    centred one). Short videos follow `pre.short_video`."""

    def __init__(self, pre: Preprocess, clips: int = 1):
        if clips < 1:
            raise ValueError(f"clips must be at least 1, got {clips}")
        self.pre, self.clips = pre, clips
        self.num_views = clips

    def __call__(self, num_frames: int, fps: float | None = None, *,
                 rng: np.random.Generator | None = None,
                 timestamps: np.ndarray | None = None) -> list[ClipPlan]:
        stride, room = _room(self.pre, num_frames, fps)
        if self.clips == 1:
            starts = [room // 2]
        else:
            starts = [round(room * i / (self.clips - 1)) for i in range(self.clips)]
        return [_clip(self.pre, s, stride, num_frames, fps, timestamps) for s in starts]


def window_starts(duration: float, window: float, stride: float,
                  slack: float = 1e-6) -> list[float]:
    """Window start times covering `[0, duration]`; the last window ends at the video's end,
    unless what the others leave uncovered is within `slack` s (less than a frame: a 4.004 s
    video does not need a window at 2.004 s beside the one at 2 s)."""
    if stride <= 0:
        stride = window
    starts, t = [], 0.0
    while t + window <= duration + 1e-6:
        starts.append(round(t, 6))
        t += stride
    last = round(max(0.0, duration - window), 6)
    if not starts or starts[-1] + window < duration - slack:
        starts.append(last)
    return starts


def check_at_least_a_frame(fps: float, **spans: float) -> None:
    """`ConfigError` for a timeline span (window, stride) shorter than one frame: it could only
    repeat the same clip, and a 1 ms stride over an hour-long video plans millions of them."""
    from vidlab.errors import ConfigError

    frame_s = 1.0 / fps
    for name, seconds in spans.items():
        if 0 < seconds < frame_s - 1e-9:
            raise ConfigError(f"timeline {name} {seconds:g} s is shorter than one frame of this "
                              f"video ({frame_s:.4g} s at {fps:g} fps): give at least one frame, "
                              "or window 0 for one prediction per video")


class SlidingWindowSampler:
    """Long videos: one clip per `window`-second window, windows `stride` seconds apart, the
    last one ending at the video's end — a timeline that covers the video end to end.

    Each window's clip keeps the training sampling of contiguous clips (`pre.num_frames` frames
    `pre.stride_for(fps)` apart, on the frame-step grid), centred in its window, so it looks to
    the model like a training clip. A video no longer than one window (or any video when
    `window` is 0/None) gets the single centred view of `view_sampler(pre)` instead, spanning
    the whole video. With `max_clips`, the stride widens so at most that many windows are made.
    """

    def __init__(self, pre: Preprocess, window: float | None = 2.0, stride: float | None = 1.0,
                 max_clips: int | None = None):
        self.pre, self.window, self.stride, self.max_clips = pre, window, stride, max_clips
        self.num_views = None  # depends on the video's length

    def windowed(self, num_frames: int, fps: float) -> bool:
        """Whether a video of `num_frames` at `fps` gets a timeline (else one clip)."""
        return bool(self.window and self.window > 0 and num_frames / fps > self.window + 1e-6)

    def __call__(self, num_frames: int, fps: float | None = None, *,
                 rng: np.random.Generator | None = None,
                 timestamps: np.ndarray | None = None) -> list[ClipPlan]:
        if num_frames <= 0 or not fps or fps <= 0:
            raise ValueError(f"cannot plan clips for {num_frames} frames at {fps} fps")
        duration = num_frames / fps
        if not self.windowed(num_frames, fps):
            (one,) = view_sampler(self.pre)(num_frames, fps)
            return [ClipPlan(0.0, round(duration, 3), one.indices)]
        window = float(self.window)  # type: ignore[arg-type]
        stride = self.stride or window
        check_at_least_a_frame(fps, window=window, stride=stride)
        if self.max_clips and self.max_clips > 1 and (duration - window) / stride + 2 > self.max_clips:
            stride = (duration - window) / (self.max_clips - 1) + 1e-6  # n-1 steps reach the end
        plans = []
        for start in window_starts(duration, window, stride, slack=0.5 / fps):
            end = min(duration, start + window)
            indices = self.clip(start, end, num_frames, fps, timestamps)
            plans.append(ClipPlan(round(start, 3), round(end, 3), indices))
        return plans

    def clip(self, start: float, end: float, num_frames: int, fps: float,
             timestamps: np.ndarray | None = None) -> np.ndarray:
        """The frame indices of the window `[start, end]` s: the training clip centred in it,
        on the frame-step grid, inside the video's `num_frames` frames. Live streams call this
        for each window of the frames received so far, so a stream's window and `predict`'s
        window of the same frames are the same clip."""
        pre, step = self.pre, self.pre.stride_for(fps)
        span = (pre.num_frames - 1) * step + 1
        last_start = max(0, (num_frames - span) // step * step)
        middle = (start + end) / 2
        # the first frame at or after the middle (without timestamps: on the constant-rate grid)
        centre = float(np.ceil(middle * fps - 1e-6)) if timestamps is None else \
            float(np.searchsorted(timestamps, middle - 1e-9))
        first = int(round((centre - (span - 1) / 2) / step)) * step  # on the frame-step grid
        first = min(max(0, first), last_start)
        indices = fit_indices(first + np.arange(pre.num_frames) * step, num_frames,
                              pre.short_video)
        return indices.astype(np.int64)


def train_sampler(pre: Preprocess, jitter: bool = True) -> ClipSampler:
    """The training sampler for `pre.sampling`: random clips, or TSN segments at one random offset
    (`jitter` False: the centred clip / segment centres)."""
    if pre.sampling == "segments":
        return SegmentSampler(pre, views=1, random=jitter)
    return RandomClipSampler(pre, jitter=jitter)


def view_sampler(pre: Preprocess, clips: int = 1) -> ClipSampler:
    """The evaluation sampler for `pre.sampling`: `clips` temporal views of each video."""
    if pre.sampling == "segments":
        return SegmentSampler(pre, views=clips)
    return UniformMultiViewSampler(pre, clips=clips)


def window_sampler(pre: Preprocess, window: float | None = 2.0, stride: float | None = 1.0,
                   max_clips: int | None = None) -> SlidingWindowSampler:
    """The timeline sampler of `predict` and the server (see `SlidingWindowSampler`)."""
    return SlidingWindowSampler(pre, window, stride, max_clips)


def views_label(views: tuple[int, int] | list[int]) -> str:
    """`(3, 1)` → `"3x1"`: how metrics state the views (temporal clips × spatial crops)."""
    clips, crops = (int(v) for v in views)
    return f"{clips}x{crops}"


def parse_views(text: str) -> tuple[int, int]:
    """`"3x1"` → `(3, 1)`; `ValueError` for anything else."""
    try:
        clips, crops = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"views {text!r} is not CLIPSxCROPS (e.g. 3x1)") from None
    if clips < 1 or crops < 1:
        raise ValueError(f"views {text!r} must be at least 1x1")
    return clips, crops
