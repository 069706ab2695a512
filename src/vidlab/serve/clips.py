"""Which frames feed which clip: the timeline plan and the streaming assembly of clips.

A video becomes one centre clip, or (when it is longer than one window) one clip per time
window. Clips keep the bundle's temporal sampling (`Preprocess.num_frames` frames, `stride_for`
apart), so a window clip looks to the model exactly like a training clip. Frames are streamed in
presentation order and dropped as soon as no pending clip needs them: memory is bounded by one
clip's span, whatever the video's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from vidlab.data.samplers import fit_indices
from vidlab.data.transforms import Preprocess
from vidlab.errors import VideoDecodeError


@dataclass(frozen=True)
class ClipPlan:
    """One clip to classify: its time window (seconds) and frame indices."""

    start: float
    end: float
    indices: np.ndarray


def window_starts(duration: float, window: float, stride: float) -> list[float]:
    """Window start times covering `[0, duration]`; the last window ends at the video's end."""
    if stride <= 0:
        stride = window
    starts, t = [], 0.0
    while t + window <= duration + 1e-6:
        starts.append(round(t, 6))
        t += stride
    last = round(max(0.0, duration - window), 6)
    if not starts or starts[-1] + window < duration - 1e-6:
        starts.append(last)
    return starts


def plan_clips(pre: Preprocess, num_frames: int, fps: float, window: float | None = None,
               stride: float | None = None, max_clips: int | None = None,
               timestamps: np.ndarray | None = None) -> tuple[list[ClipPlan], bool]:
    """The clips to run for a video, and whether they form a timeline of windows.

    Videos no longer than `window` seconds (or any video when `window` is 0/None) get one clip
    centred in the video, sampled as `Preprocess.clip_indices` does at evaluation time. With
    `max_clips`, the stride widens as needed so the timeline holds at most that many windows.
    `timestamps` (seconds of each frame) place windows exactly in variable-frame-rate videos;
    without them frame `i` is taken to be at `i / fps`.
    """
    if num_frames <= 0 or fps <= 0:
        raise ValueError(f"cannot plan clips for {num_frames} frames at {fps} fps")
    duration = num_frames / fps
    if not window or window <= 0 or duration <= window + 1e-6:
        (indices,) = pre.clip_indices(num_frames, 1, fps)
        return [ClipPlan(0.0, round(duration, 3), np.asarray(indices, np.int64))], False
    stride = stride or window
    if max_clips and max_clips > 1 and (duration - window) / stride + 2 > max_clips:
        stride = (duration - window) / (max_clips - 1) + 1e-6  # n-1 steps reach the end exactly
    step = pre.stride_for(fps)
    span = (pre.num_frames - 1) * step + 1
    last_start = max(0, (num_frames - span) // step * step)
    offsets = np.arange(pre.num_frames) * step
    plans = []
    for start in window_starts(duration, window, stride):
        end = min(duration, start + window)
        middle = (start + end) / 2
        centre = middle * fps if timestamps is None else \
            float(np.searchsorted(timestamps, middle - 1e-9))
        first = int(round((centre - (span - 1) / 2) / step)) * step  # on the frame-step grid
        first = min(max(0, first), last_start)
        indices = fit_indices(first + offsets, num_frames, pre.short_video)
        plans.append(ClipPlan(round(start, 3), round(end, 3), indices.astype(np.int64)))
    return plans, True


def frame_range(plans: list[ClipPlan]) -> tuple[int, int, int]:
    """`(start, stop, step)` of a sequential read that yields every frame the plans need."""
    needed = np.unique(np.concatenate([p.indices for p in plans]))
    step = int(np.gcd.reduce(np.diff(needed))) if len(needed) > 1 else 1
    return int(needed[0]), int(needed[-1]) + 1, max(1, step)


def stream_clips(frames: Iterable[tuple[int, np.ndarray]], plans: list[ClipPlan],
                 path: str = "") -> Iterator[tuple[int, np.ndarray]]:
    """Assemble `uint8 T×H×W×3` clips from `(index, frame)` pairs in increasing index order.

    Yields `(plan_number, clip)` as soon as a clip's last frame has arrived. When the stream ends
    early (a container that over-reports its frame count), missing frames repeat the last
    decoded frame; when it yields nothing at all, `VideoDecodeError` is raised.
    """
    order = sorted(range(len(plans)), key=lambda i: int(plans[i].indices.max()))
    # the lowest index any clip from position k onwards still needs: frames below it are dropped
    lows = [int(plans[i].indices.min()) for i in order]
    keep_from = np.minimum.accumulate(lows[::-1])[::-1].tolist() + [np.iinfo(np.int64).max]
    needed = {int(j) for p in plans for j in p.indices}
    buffer: dict[int, np.ndarray] = {}
    last: tuple[int, np.ndarray] | None = None
    k = 0
    for index, frame in frames:
        last = (index, frame)
        if index in needed:
            buffer[index] = frame
        while k < len(order) and int(plans[order[k]].indices.max()) <= index:
            plan = plans[order[k]]
            yield order[k], np.stack([_frame(buffer, int(j), last) for j in plan.indices])
            k += 1
            for j in [j for j in buffer if j < keep_from[k]]:
                del buffer[j]
        if k == len(order):
            return
    if last is None:
        raise VideoDecodeError("no frame could be decoded", path or None)
    for pos in range(k, len(order)):
        plan = plans[order[pos]]
        yield order[pos], np.stack([_frame(buffer, int(j), last) for j in plan.indices])


def _frame(buffer: dict[int, np.ndarray], index: int, last: tuple[int, np.ndarray]) -> np.ndarray:
    """Frame `index`, else the nearest buffered one before it (a frame the decoder skipped)."""
    if index in buffer:
        return buffer[index]
    earlier = [j for j in buffer if j <= index]
    return buffer[max(earlier)] if earlier else last[1]
