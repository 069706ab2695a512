"""Training-data statistics: the drift-monitoring baseline saved as a bundle's `data_stats.json`.

Keys (contract): `num_clips`, `class_counts`, `features` (`width`, `height`, `fps`, `duration`
from the manifest; `brightness`, `contrast`, `motion` from decoded clips), each as a histogram
`{"edges", "counts", "mean", "std"}`, and `pixel_mean`/`pixel_std` (RGB, 0–1 scale).

Clip features are measured on exactly the frames the model sees before normalization: the
centred view of `vidlab.data.clips.decode_views` (decoded at `preprocess.short_side`, the
indices `view_sampler(preprocess)` picks). The server calls the same `clip_features` on each
request's frames, so monitoring compares like with like.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vidlab.data.memo import file_map
from vidlab.data.transforms import Preprocess
from vidlab.io.quality import LUMA_WEIGHTS

META_FEATURES = ("width", "height", "fps", "duration")
CLIP_FEATURES = ("brightness", "contrast", "motion")
_LUMA = np.array(LUMA_WEIGHTS, np.float32)


def clip_features(frames: np.ndarray) -> dict[str, float]:
    """`uint8 T×H×W×3` → brightness (mean luma, 0–255), contrast (mean per-frame luma std) and
    motion (mean absolute luma change between consecutive frames; 0 for one frame)."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"expected frames T×H×W×3, got shape {f.shape}")
    luma = f.astype(np.float32) @ _LUMA
    motion = float(np.abs(np.diff(luma, axis=0)).mean()) if len(luma) > 1 else 0.0
    return {"brightness": float(luma.mean()),
            "contrast": float(luma.reshape(len(luma), -1).std(axis=1).mean()),
            "motion": motion}


def histogram(values: list[float] | np.ndarray, bins: int = 20) -> dict[str, Any]:
    """`{"edges", "counts", "mean", "std"}` of `values` (a constant gets a 1-wide range)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
    if v.size == 0:
        return {"edges": [0.0, 1.0], "counts": [0], "mean": 0.0, "std": 0.0}
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "mean": float(v.mean()), "std": float(v.std())}


def psi(baseline_hist: dict[str, Any], values: list[float] | np.ndarray,
        eps: float = 1e-4) -> float:
    """Population stability index of `values` against a baseline histogram (its bins; values
    outside the range count in the end bins). ~0: same; > 0.1: shifted; > 0.25: drifted."""
    edges = np.asarray(baseline_hist["edges"], np.float64)
    base = np.asarray(baseline_hist["counts"], np.float64)
    v = np.asarray(values, np.float64)
    if v.size == 0 or base.sum() == 0:
        return 0.0
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(base) - 1)
    cur = np.bincount(idx, minlength=len(base)).astype(np.float64)
    p = np.maximum(base / base.sum(), eps)
    q = np.maximum(cur / cur.sum(), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def _clip_job(job: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
    path, spec = job
    try:
        from vidlab.data.clips import decode_views

        _, (frames,) = decode_views(path, Preprocess.from_dict(spec))
    except Exception:  # an unreadable clip simply does not contribute
        return None
    x = frames.reshape(-1, 3).astype(np.float64) / 255.0
    return {**clip_features(frames), "sum": x.sum(0).tolist(), "sq": (x * x).sum(0).tolist(),
            "n": int(x.shape[0])}


def compute_data_stats(entries: list[dict[str, Any]], labels: list[str],
                       preprocess: Preprocess, max_clips: int = 200, seed: int = 0,
                       bins: int = 20, workers: int | None = None) -> dict[str, Any]:
    """The `data_stats.json` baseline of `entries` (clip features from up to `max_clips`
    randomly chosen clips, decoded as the model sees them)."""
    counts = {label: 0 for label in labels}
    for e in entries:
        counts[str(e["label"])] = counts.get(str(e["label"]), 0) + 1
    features = {name: histogram([e.get(name) for e in entries], bins) for name in META_FEATURES}
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(entries))[:max_clips]
    jobs = [(entries[i]["path"], preprocess.to_dict()) for i in pick]
    measured = [m for m in file_map(_clip_job, jobs, workers) if m is not None]
    for name in CLIP_FEATURES:
        features[name] = histogram([m[name] for m in measured], bins)
    n = sum(m["n"] for m in measured)
    if n:
        mean = np.sum([m["sum"] for m in measured], axis=0) / n
        var = np.sum([m["sq"] for m in measured], axis=0) / n - mean**2
        pixel_mean, pixel_std = mean.tolist(), np.sqrt(np.maximum(var, 0)).tolist()
    else:
        pixel_mean, pixel_std = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    return {"num_clips": len(entries), "class_counts": counts, "features": features,
            "pixel_mean": [float(v) for v in pixel_mean],
            "pixel_std": [float(v) for v in pixel_std]}
