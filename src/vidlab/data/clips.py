"""Entries → clips: the one path a clip takes from a video file to a model.

**entries → sampler → reader → transform → tensor.** Whoever asks — training, evaluation,
`predict`, the server, acceleration, generation, the data statistics, a stream or an index —
a clip is made here:

1. `open_video(path, pre)` opens a `VideoReader` that decodes at `pre.short_side` (FFmpeg's
   scaler resizes) and checks that the file is a usable video;
2. a sampler of `vidlab.data.samplers`, built once from the `Preprocess`, turns the video's
   length and fps into `ClipPlan`s (frame indices);
3. `read_clips` decodes every plan's frames by random access (a few views of a video), or
   `stream_clips` decodes them sequentially with memory bounded by one clip's span (a
   timeline over a long video) — both give the frames of a full sequential decode;
4. `Preprocess.views` (`eval_views` for several clips) turns `uint8 T×H×W×3` frames into
   normalized `float C×T×S×S` tensors, one per spatial crop.

`load_views` runs 1–4 for one video; `load_clips` for a list of entries, into a `ClipSet` that
every variant of a model can be measured on without decoding again; `iter_views` streams a
long video's timeline. Nothing else in vidlab opens a reader for model input (enhancement,
which streams whole videos frame by frame, is the one exception).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlab.data.samplers import ClipPlan, ClipSampler, view_sampler
from vidlab.data.transforms import Preprocess, center_crop_frames, eval_views
from vidlab.errors import DatasetError, VideoDecodeError, VideoTooLongError, VidlabError

log = logging.getLogger(__name__)


def open_video(path: str | Path, pre: Preprocess, max_duration: float | None = None):
    """A `VideoReader` of `path` decoding at `pre.short_side`, its frame table read.

    Raises `VideoOpenError`/`VideoDecodeError` (naming the file) for unusable files and
    `VideoTooLongError` past `max_duration` seconds.
    """
    from vidlab.io import VideoReader

    reader = VideoReader(path, size=pre.short_side)
    try:
        info = reader.info
    except VidlabError:
        raise
    except Exception as exc:
        raise VideoDecodeError(f"cannot read ({type(exc).__name__}: {exc})", path) from exc
    if info.num_frames <= 0 or info.fps <= 0:
        raise VideoDecodeError("the video stream has no frames", path)
    if max_duration is not None and info.duration > max_duration:
        raise VideoTooLongError(
            f"video is {info.duration:.1f} s long; the limit is {max_duration:g} s", path)
    return reader


def sample(reader: Any, sampler: ClipSampler, rng: np.random.Generator | None = None
           ) -> list[ClipPlan]:
    """The plans `sampler` makes for the video behind `reader` (length, fps, timestamps)."""
    return sampler(len(reader), reader.fps, rng=rng, timestamps=reader.timestamps)


@contextlib.contextmanager
def _decoding(path: Any) -> Iterator[None]:
    """Decoder failures become a `VideoDecodeError` naming the file (never a bare traceback)."""
    try:
        yield
    except VidlabError:
        raise
    except Exception as exc:
        log.debug("decoding %s failed", path, exc_info=True)
        raise VideoDecodeError(f"cannot decode ({type(exc).__name__}: {exc})", path) from exc


def read_clips(source: Any, plans: list[ClipPlan]) -> list[np.ndarray]:
    """`uint8 T×H×W×3` frames of every plan, by random access.

    `source` is a `VideoReader` (each needed frame is decoded once, whatever the overlap of the
    plans) or an already decoded video array `N×H×W×3` (the training cache).
    """
    flat = np.concatenate([p.indices for p in plans])
    if isinstance(source, np.ndarray):
        frames = np.asarray(source[flat])
    else:
        uniq, inverse = np.unique(flat, return_inverse=True)
        with _decoding(source.path):
            frames = source.get_frames([int(k) for k in uniq])[inverse]
    return np.split(frames, np.cumsum([len(p.indices) for p in plans])[:-1])


def frame_range(plans: list[ClipPlan]) -> tuple[int, int, int]:
    """`(start, stop, step)` of a sequential read that yields every frame the plans need."""
    needed = np.unique(np.concatenate([p.indices for p in plans]))
    step = int(np.gcd.reduce(np.diff(needed))) if len(needed) > 1 else 1
    return int(needed[0]), int(needed[-1]) + 1, max(1, step)


def assemble(frames: Iterable[tuple[int, np.ndarray]], plans: list[ClipPlan],
             path: str = "") -> Iterator[tuple[int, np.ndarray]]:
    """Assemble `uint8 T×H×W×3` clips from `(index, frame)` pairs in increasing index order.

    Yields `(plan_number, clip)` as soon as a clip's last frame has arrived; frames no pending
    clip needs are dropped at once. When the stream ends early (a container that over-reports
    its frame count), missing frames repeat the last decoded frame; when it yields nothing at
    all, `VideoDecodeError` is raised.
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
            p = plans[order[k]]
            yield order[k], np.stack([_frame(buffer, int(j), last) for j in p.indices])
            k += 1
            for j in [j for j in buffer if j < keep_from[k]]:
                del buffer[j]
        if k == len(order):
            return
    if last is None:
        raise VideoDecodeError("no frame could be decoded", path or None)
    for pos in range(k, len(order)):
        p = plans[order[pos]]
        yield order[pos], np.stack([_frame(buffer, int(j), last) for j in p.indices])


def _frame(buffer: dict[int, np.ndarray], index: int, last: tuple[int, np.ndarray]) -> np.ndarray:
    """Frame `index`, else the nearest buffered one before it (a frame the decoder skipped)."""
    if index in buffer:
        return buffer[index]
    earlier = [j for j in buffer if j <= index]
    return buffer[max(earlier)] if earlier else last[1]


def stream_clips(reader: Any, plans: list[ClipPlan]) -> Iterator[tuple[int, np.ndarray]]:
    """`(plan_number, uint8 T×H×W×3)` for every plan, decoding the video sequentially once;
    memory is bounded by one clip's span whatever the video's length."""
    start, stop, step = frame_range(plans)
    path = str(reader.path)
    with _decoding(path):
        frames = ((i, f) for i, _, f in reader.iter_frames_with_time(start, stop, step))
        yield from assemble(frames, plans, path)


def iter_views(reader: Any, plans: list[ClipPlan]) -> Iterator[tuple[int, np.ndarray]]:
    """`(plan_number, uint8 frames)` of every plan, then closes `reader`.

    One plan is read by random access, exactly as evaluation reads it; a timeline of several
    windows is streamed (`stream_clips`). Both yield the frames of a full sequential decode.
    """
    try:
        if len(plans) == 1:
            yield 0, read_clips(reader, plans)[0]
        else:
            yield from stream_clips(reader, plans)
    finally:
        reader.close()


def decode_views(path: str | Path, pre: Preprocess, sampler: ClipSampler | None = None,
                 rng: np.random.Generator | None = None
                 ) -> tuple[list[ClipPlan], list[np.ndarray]]:
    """The plans `sampler` (default: the centred view) makes for one video, and their
    `uint8 T×H×W×3` frames at `pre.short_side` (before cropping and normalization)."""
    sampler = sampler or view_sampler(pre)
    with open_video(path, pre) as reader:
        plans = sample(reader, sampler, rng)
        return plans, read_clips(reader, plans)


def load_views(path: str | Path, pre: Preprocess, sampler: ClipSampler | None = None,
               crops: int = 1) -> torch.Tensor:
    """Every view of one video as model input: `float32 V×C×T×S×S`, V = plans × `crops`
    (clip-major)."""
    _, frames = decode_views(path, pre, sampler)
    return eval_views(frames, pre, crops)


@dataclass
class ClipSet:
    """Clips of many videos held in memory, one row per view.

    `clips` is `float32 N×C×T×S×S` model input (or `uint8 N×T×S×S×3` centre crops with
    `load_clips(raw=True)`); `targets` the class index of each row (-1: label unknown);
    `video` the index of the row's entry in the list given to `load_clips` (rows of one video
    share it); `views` the (temporal clips, spatial crops) each video was sampled with.
    """

    clips: np.ndarray
    targets: np.ndarray
    video: np.ndarray
    paths: list[str]
    labels: list[str]
    views: tuple[int, int] = (1, 1)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    def head(self, n: int) -> ClipSet:
        """The first `n` rows (`load_clips(limit=...)` interleaves classes, so a head covers
        every label)."""
        return ClipSet(self.clips[:n], self.targets[:n], self.video[:n], self.paths[:n],
                       self.labels, self.views)

    def batches(self, batch_size: int = 8) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(clips, targets)` in row order, `batch_size` rows at a time."""
        for i in range(0, len(self.clips), batch_size):
            yield self.clips[i:i + batch_size], self.targets[i:i + batch_size]


def _field(entry: Any, name: str, default: Any = None) -> Any:
    return entry.get(name, default) if isinstance(entry, dict) else getattr(entry, name, default)


def balanced_order(labels: list[Any], limit: int | None, seed: int = 0) -> list[int]:
    """Positions of up to `limit` items, classes interleaved (seeded), so a small sample covers
    every label; every position, in order, without a limit."""
    if limit is None or len(labels) <= limit:
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    by_label: dict[Any, list[int]] = {}
    for i in rng.permutation(np.arange(len(labels))):
        by_label.setdefault(labels[i], []).append(int(i))
    order: list[int] = []
    while len(order) < limit:
        for group in by_label.values():
            if group and len(order) < limit:
                order.append(group.pop())
    return order


def load_clips(entries: list[Any], preprocess: Preprocess, sampler: ClipSampler | None = None,
               *, labels: list[str] | None = None, crops: int = 1, limit: int | None = None,
               seed: int = 0, raw: bool = False, keep_unknown: bool = True,
               max_bytes: int | None = None, progress: bool = False) -> ClipSet:
    """Decode and preprocess the views of `entries` (dicts or objects with `path`, `label`).

    - `sampler`: which clips of each video (default: the centred view, `view_sampler(pre)`);
      `crops` spatial crops of each (`raw` keeps the centre crop only).
    - `labels`: class names (default: the entries' labels, sorted); an entry whose label is not
      among them gets target -1, or is left out when `keep_unknown` is false.
    - `limit`: at most this many videos, classes interleaved (seeded by `seed`).
    - `raw`: keep `uint8 T×S×S×3` centre crops (the frames the model sees, before
      normalization) instead of model input.
    - `max_bytes`: refuse with `DatasetError`, before decoding, a set that would not fit.

    Unreadable videos are logged and skipped (listed in `ClipSet.skipped`); none readable
    raises `DatasetError`.
    """
    from vidlab.progress import progress as bar

    if labels is None:
        labels = sorted({str(_field(e, "label")) for e in entries})
    index = {name: i for i, name in enumerate(labels)}
    usable = [i for i, e in enumerate(entries) if keep_unknown or str(_field(e, "label")) in index]
    chosen = [usable[j] for j in balanced_order([_field(entries[i], "label") for i in usable],
                                                limit, seed)]
    sampler = sampler or view_sampler(preprocess)
    crops = 1 if raw else crops
    per_video = (getattr(sampler, "num_views", None) or 1) * crops
    s, t = preprocess.crop_size, preprocess.num_frames
    need = len(chosen) * per_video * t * s * s * 3 * (1 if raw else 4)
    if max_bytes is not None and need > max_bytes:
        raise DatasetError(f"{len(chosen)} videos × {per_video} clips at {t}×{s}² need "
                           f"{need / 2**30:.1f} GiB in memory (limit {max_bytes / 2**30:.1f} "
                           "GiB): pass fewer videos or clips per video")
    rows: list[np.ndarray] = []
    targets, video, paths, skipped = [], [], [], []
    temporal = 1
    for k in bar(chosen, desc="loading clips", enabled=None if progress else False):
        e = entries[k]
        path = str(_field(e, "path"))
        try:
            plans, frames = decode_views(path, preprocess, sampler)
        except VidlabError as exc:
            log.warning("skipping %s", exc)
            skipped.append(path)
            continue
        temporal = len(plans)
        if raw:
            views = [center_crop_frames(f, preprocess.crop_size) for f in frames]
        else:
            views = list(eval_views(frames, preprocess, crops).numpy())
        target = index.get(str(_field(e, "label")), -1)
        for v in views:
            rows.append(v)
            targets.append(target)
            video.append(k)
            paths.append(path)
    if not rows:
        raise DatasetError("none of the videos could be read",
                           Path(skipped[0]) if skipped else None)
    clips = np.stack(rows)
    return ClipSet(clips if raw else clips.astype(np.float32, copy=False),
                   np.asarray(targets, np.int64), np.asarray(video, np.int64), paths,
                   list(labels), (temporal, crops), skipped)

