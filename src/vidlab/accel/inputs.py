"""The real clips acceleration measures on: the bundle's own split, decoded once.

Calibration and accuracy clips come from `vidlab.data.clips.load_clips` with the bundle's
saved `Preprocess` and the centred view (`view_sampler`, "1x1") — the very tensors `vidlab
eval`, `predict` and the server feed the model. They are held in one `ClipSet` so that every
variant (PyTorch, pruned, ONNX, INT8) is measured on identical inputs, by the one evaluation
(`vidlab.train.evaluate`), without decoding again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidlab.bundle import Bundle
from vidlab.data.samplers import view_sampler, views_label
from vidlab.errors import DatasetError

if TYPE_CHECKING:
    from vidlab.data.clips import ClipSet

VIEWS = (1, 1)
"""Views accel measures top-1 with (one centred clip per video; stated in metrics.json)."""


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


def bundle_clips(bundle: Bundle, entries: list[Any], limit: int | None = None,
                 seed: int = 0) -> ClipSet:
    """Up to `limit` entries (classes interleaved, seeded) as the bundle's model input, one
    centred view each; unreadable videos are skipped, none readable is a `DatasetError`."""
    from vidlab.data.clips import load_clips

    pre = bundle.preprocess()
    return load_clips(entries, pre, view_sampler(pre, VIEWS[0]), labels=bundle.labels,
                      crops=VIEWS[1], limit=limit, seed=seed)


def predicted(runner: Any, clips: ClipSet) -> np.ndarray:
    """The class a runner predicts for each video of `clips` (views averaged)."""
    from vidlab.train.evaluation import as_runner, clipset_logits

    fn, _, _ = as_runner(runner)
    return clipset_logits(fn, clips)[0].argmax(axis=1)


def top1(runner: Any, clips: ClipSet) -> dict[str, Any]:
    """`{"top1", "views"}` of a runner on `clips` through `vidlab.train.evaluate` (top-1 is
    None when no clip has a known label)."""
    from vidlab.train.evaluation import evaluate

    result = evaluate(runner, clips)
    return {"top1": result.top1, "views": views_label(result.views)}
