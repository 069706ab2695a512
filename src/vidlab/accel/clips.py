"""Real clips for calibration and accuracy, preprocessed exactly as the bundle says.

A bundle's `Preprocess` (frames, stride, size, normalization) plus `VideoReader(path,
size=preprocess.short_side)` and `preprocess.clip_indices(...)`: the same tensor the server and
`vidlab eval` feed the model. Decoded clips are kept in one float32 array so that every variant
is measured on identical inputs without decoding again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.bundle import Bundle
from vidlab.errors import DatasetError, VidlabError

log = logging.getLogger(__name__)


@dataclass
class ClipSet:
    """Preprocessed clips `N×C×T×H×W` (float32) with integer targets (-1 = label unknown)."""

    clips: np.ndarray
    targets: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return len(self.clips)

    def head(self, n: int) -> ClipSet:
        """The first `n` clips (load_clips interleaves classes, so a head covers every label)."""
        return ClipSet(self.clips[:n], self.targets[:n], self.paths[:n])

    def batches(self, batch_size: int = 8):
        for i in range(0, len(self.clips), batch_size):
            yield self.clips[i:i + batch_size], self.targets[i:i + batch_size]


def _field(entry: Any, name: str, default: Any = None) -> Any:
    return entry.get(name, default) if isinstance(entry, dict) else getattr(entry, name, default)


def dataset_splits(bundle: Bundle, data: str | Path | None = None):
    """Train/val/test entries of `data` (else the dataset the bundle was trained on).

    Split exactly as training did (`vidlab.train.dataset.prepare_data` with the fractions and
    seed saved in the bundle's config), so calibration never sees validation clips.
    """
    from vidlab.train.dataset import prepare_data

    train_cfg = bundle.config.get("train") if isinstance(bundle.config.get("train"), dict) else {}
    ds = train_cfg.get("dataset") if isinstance(train_cfg.get("dataset"), dict) else {}
    source = data or ds.get("path")
    if not source:
        raise DatasetError("needs real clips to calibrate and evaluate on: pass data / --data "
                           "(a dataset folder or manifest)", bundle.path)
    return prepare_data(source, val=ds.get("val", 0.15), test=ds.get("test", 0.15),
                        seed=ds.get("split_seed", 0), clean=ds.get("clean", True),
                        labels=bundle.labels or None)


def load_clip(path: str | Path, preprocess) -> np.ndarray:
    """One centre clip of a video as `float32 C×T×H×W`, preprocessed like serving does."""
    from vidlab.io.reader import VideoReader

    with VideoReader(path, size=preprocess.short_side) as reader:
        indices = preprocess.clip_indices(len(reader), 1, fps=reader.fps)[0]
        frames = reader.get_frames(indices)
    return preprocess(frames).numpy()


def load_clips(bundle: Bundle, entries: list[Any], limit: int | None = None,
               seed: int = 0) -> ClipSet:
    """Decode and preprocess up to `limit` entries (a seeded, class-balanced-ish sample).

    Unreadable videos are reported and skipped; none readable raises `DatasetError`.
    """
    preprocess = bundle.preprocess()
    label_index = {name: i for i, name in enumerate(bundle.labels)}
    chosen = list(entries)
    if limit is not None and len(chosen) > limit:
        rng = np.random.default_rng(seed)
        # interleave classes so a small sample still covers every label
        by_label: dict[Any, list[Any]] = {}
        for e in rng.permutation(np.arange(len(chosen))):
            by_label.setdefault(_field(chosen[e], "label"), []).append(chosen[e])
        order: list[Any] = []
        while len(order) < limit:
            for group in by_label.values():
                if group and len(order) < limit:
                    order.append(group.pop())
        chosen = order
    clips, targets, paths = [], [], []
    for e in chosen:
        path = str(_field(e, "path"))
        try:
            clips.append(load_clip(path, preprocess))
        except VidlabError as exc:
            log.warning("skipping %s", exc)
            continue
        targets.append(label_index.get(_field(e, "label"), -1))
        paths.append(path)
    if not clips:
        raise DatasetError("none of the videos could be read", Path(paths[0]) if paths else None)
    return ClipSet(np.stack(clips).astype(np.float32), np.asarray(targets, np.int64), paths)


def top1(runner, clips: ClipSet, batch_size: int = 8) -> float | None:
    """Top-1 accuracy (0–1) of a runner on labelled clips; None when no clip has a label."""
    correct = total = 0
    for x, y in clips.batches(batch_size):
        pred = runner(x).argmax(axis=1)
        known = y >= 0
        correct += int((pred[known] == y[known]).sum())
        total += int(known.sum())
    return correct / total if total else None


def predictions(runner, clips: ClipSet, batch_size: int = 8) -> np.ndarray:
    """Logits of a runner on every clip, `N×num_classes`."""
    return np.concatenate([runner(x) for x, _ in clips.batches(batch_size)])
