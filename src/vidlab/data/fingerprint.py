"""The dataset fingerprint: what a training recipe needs to know about a set of clips.

Like nnU-Net's fingerprint (sizes, spacing, intensities decide the segmentation plan), this is
computed once from the manifest and a few decoded frames, and saved in the run directory
(`fingerprint.json`) and the bundle, so the plan made from it can be re-checked later:

- `clips`: number of clips and classes, per-class counts and the imbalance (largest / smallest);
- `duration`, `num_frames`, `fps`, `short_side`, `aspect` (width / height): quantiles from the
  manifest's probed metadata (every clip);
- `motion`: measured on up to `max_clips` clips (a class-balanced sample) from frame pairs at
  lags of one frame to one second, decoded at a 64-pixel short side:
  - `moving_area`: fraction of the picture that moves within a quarter second at a clip's
    busiest moment (how big the moving things are: most of it for camera motion, a few
    percent for an object, under 1 % for a small one);
  - `active_fraction`: fraction of a clip's time in which something moves (how much of the
    clip the action fills; `action_seconds` = that times the duration);
  - `decorrelation_s`: time after which half of the change a second brings has happened (how
    fast it moves, whatever moves: small for fast or fine motion);
  - `camera_speed`: global translation by phase correlation, in short sides per second;
- `labels`: flip maps and time/order words read from class names (`vidlab.data.label_words`).

Every figure is a quantile dict `{"p10", "p50", "p90", "min", "max"}` over clips; `motion` also
holds each class's medians (`motion.by_class`), so the fastest class shows even in a small set.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.data.label_words import label_report
from vidlab.data.memo import file_map

log = logging.getLogger(__name__)

VERSION = 1
FINGERPRINT_FILE = "fingerprint.json"
MOTION_SIZE = 64
"""Short side (pixels) the motion measures decode at: cheap, and blind to sensor noise."""
LAGS_S = (0.1, 0.25, 0.5, 1.0)
REFERENCE_LAG_S = 0.25
MOTION_KEYS = ("moving_area", "active_fraction", "action_seconds", "decorrelation_s",
               "camera_speed")
CHANGE_THRESHOLD = 12.0
"""Luma change (0-255, after a 3×3 blur) that counts as motion wherever it happens."""
NOISE_LEVEL = 3.0
"""Smaller luma changes are sensor noise or compression, never motion."""
MIN_GRADIENT = 4.0
"""Luma gradient (per pixel) above which a pixel has texture that shows small shifts."""
MIN_SHIFT_PX = 0.5
"""Normal-flow displacement (pixels at the 64-pixel short side) that counts as motion."""
ACTIVE_FLOOR = 0.002
"""Moving-area fraction below which a moment counts as still."""
ACTIVE_RELATIVE = 0.2
"""...and below this fraction of the clip's busiest moment (background motion under a
stronger action)."""


def quantiles(values: list[float] | np.ndarray) -> dict[str, float]:
    """`{"min", "p10", "p50", "p90", "max"}` of the finite values (zeros when there are none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if v.size == 0:
        return {"min": 0.0, "p10": 0.0, "p50": 0.0, "p90": 0.0, "max": 0.0}
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return {"min": float(v.min()), "p10": float(p10), "p50": float(p50), "p90": float(p90),
            "max": float(v.max())}


def _median(values: list[float]) -> float | None:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def entries_digest(entries: list[dict[str, Any]]) -> str:
    """A short hash of what the fingerprint depends on (paths, labels, lengths)."""
    h = hashlib.sha256(str(VERSION).encode())
    for e in sorted(entries, key=lambda e: str(e["path"])):
        h.update(f"{e['path']}|{e['label']}|{e.get('num_frames')}|{e.get('fps')}\n".encode())
    return h.hexdigest()[:16]


def compute_fingerprint(entries: list[dict[str, Any]], labels: list[str] | None = None,
                        max_clips: int = 32, seed: int = 0,
                        workers: int | None = None) -> dict[str, Any]:
    """The fingerprint of `entries` (manifest rows with probed metadata); see the module doc."""
    labels = labels or sorted({str(e["label"]) for e in entries})
    counts = {name: 0 for name in labels}
    for e in entries:
        counts[str(e["label"])] = counts.get(str(e["label"]), 0) + 1
    meta = {key: quantiles([e.get(key) for e in entries])
            for key in ("duration", "num_frames", "fps")}
    meta["short_side"] = quantiles([min(e["width"], e["height"]) for e in entries
                                    if e.get("width") and e.get("height")])
    meta["aspect"] = quantiles([e["width"] / e["height"] for e in entries
                                if e.get("width") and e.get("height")])
    sample = balanced_sample(entries, max_clips, seed)
    jobs = [(e["path"], e.get("fps"), e.get("duration")) for e in sample]
    results = file_map(_motion_job, jobs, workers)
    measured = [m for m in results if m is not None]
    motion: dict[str, Any] = {key: quantiles([m[key] for m in measured]) for key in MOTION_KEYS}
    motion["clips_measured"] = len(measured)
    by_class: dict[str, list[dict[str, float]]] = {}
    for e, m in zip(sample, results, strict=True):
        if m is not None:
            by_class.setdefault(str(e["label"]), []).append(m)
    motion["by_class"] = {label: {key: _median([m[key] for m in ms]) for key in MOTION_KEYS}
                          for label, ms in sorted(by_class.items())}
    return {
        "version": VERSION, "digest": entries_digest(entries),
        "clips": clip_counts(counts),
        **meta, "motion": motion, "labels": label_report(labels),
    }


def clip_counts(counts: dict[str, int]) -> dict[str, Any]:
    """The fingerprint's `clips` section from clips per class (every label, zero included)."""
    present = [c for c in counts.values() if c > 0]
    return {"num_clips": sum(counts.values()), "num_classes": len(counts),
            "class_counts": dict(counts),
            "imbalance": (max(present) / min(present)) if present else 1.0}


def load_or_compute(entries: list[dict[str, Any]], labels: list[str], path: str | Path | None,
                    **kwargs: Any) -> dict[str, Any]:
    """The fingerprint cached at `path` when it matches `entries`, else computed (and saved)."""
    p = Path(path) if path else None
    if p is not None and p.is_file():
        try:
            cached = json.loads(p.read_text())
            if cached.get("version") == VERSION and cached.get("digest") == entries_digest(entries):
                return cached
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("%s: recomputing the fingerprint (%s)", p, exc)
    fp = compute_fingerprint(entries, labels, **kwargs)
    if p is not None:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(fp, indent=2))
        tmp.replace(p)
    return fp


def balanced_sample(entries: list[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Up to `n` entries taken round-robin over classes in a seeded order."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_class.setdefault(str(e["label"]), []).append(e)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in
              sorted(by_class.items())]
    out: list[dict[str, Any]] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def _motion_job(job: tuple[str, float | None, float | None]) -> dict[str, float] | None:
    path, fps, duration = job
    try:
        return clip_motion(path, fps, duration)
    except Exception as exc:  # an unreadable clip simply does not contribute
        log.debug("%s: no motion measures (%s)", path, exc)
        return None


def clip_motion(path: str | Path, fps: float | None = None,
                duration: float | None = None) -> dict[str, float]:
    """The motion measures of one clip (see the module doc), from ≤ 64 anchors × 5 frames."""
    from vidlab.io import VideoReader

    with VideoReader(path, size=MOTION_SIZE) as reader:
        n = len(reader)
        fps = float(fps or reader.fps or 25.0)
        duration = float(duration or n / fps)
        lags = sorted({max(1, round(s * fps)) for s in LAGS_S} | {1})
        lags = [lag for lag in lags if lag < n] or [1]
        if n < 2:
            raise ValueError("fewer than two frames")
        top = max(lags)
        anchors = np.unique(np.linspace(0, n - 1 - top, int(np.clip(round(duration * 2), 8, 64)))
                            .round().astype(np.int64))
        wanted = np.unique(np.concatenate([anchors + lag for lag in [0, *lags]]))
        frames = reader.get_frames(wanted)
    luma = _blur(frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
    at = {int(k): i for i, k in enumerate(wanted)}
    changed = np.array([[moving_fraction(luma[at[a]], luma[at[a + lag]]) for lag in lags]
                        for a in anchors])  # anchors × lags
    ref = int(np.argmin([abs(lag / fps - REFERENCE_LAG_S) for lag in lags]))
    activity = changed[:, ref]
    peak = float(activity.max())
    active = activity >= max(ACTIVE_FLOOR, ACTIVE_RELATIVE * peak)
    lag_s = np.asarray(lags, np.float64) / fps
    taus = [_half_time(lag_s, row) for row in changed[active]]
    speeds = [np.hypot(*_phase_shift(luma[at[a]], luma[at[a + lags[ref]]])) / lag_s[ref]
              / min(luma.shape[1:]) for a in anchors[active]] if active.any() else [0.0]
    return {"moving_area": peak if active.any() else 0.0,
            "active_fraction": float(active.mean()),
            "action_seconds": float(active.mean() * duration),
            "decorrelation_s": float(np.median(taus)) if taus else float("nan"),
            "camera_speed": float(np.median(speeds))}


def moving_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of the picture that moves from luma `a` to `b` (H×W, blurred): pixels whose
    change is large, or whose change over the local gradient (the normal-flow displacement)
    exceeds `MIN_SHIFT_PX` where there is texture to see it — so a slow pan over a smooth
    photo counts as much as over a busy texture."""
    diff = np.abs(b - a)
    gy, gx = np.gradient(a)
    grad = np.hypot(gx, gy)
    textured = (grad >= MIN_GRADIENT) & (diff >= NOISE_LEVEL) & (diff >= MIN_SHIFT_PX * grad)
    return float(np.mean((diff > CHANGE_THRESHOLD) | textured))


def _blur(luma: np.ndarray) -> np.ndarray:
    """3×3 box blur of `T×H×W` (suppresses noise and compression ringing before differencing)."""
    p = np.pad(luma, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = luma.shape[1:]
    return sum(p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def _half_time(lag_s: np.ndarray, change: np.ndarray) -> float:
    """Lag (s, interpolated) at which the changed area reaches half its value at the largest
    lag measured."""
    target = 0.5 * change[-1]
    if change[0] >= target:
        return float(lag_s[0] * target / max(change[0], 1e-9))
    for k in range(1, len(change)):
        if change[k] >= target:
            f = (target - change[k - 1]) / max(change[k] - change[k - 1], 1e-9)
            return float(lag_s[k - 1] + f * (lag_s[k] - lag_s[k - 1]))
    return float(lag_s[-1])


def _phase_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Global translation (dx, dy) in pixels from `a` to `b` by phase correlation."""
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fb = np.fft.fft2((a - a.mean()) * win), np.fft.fft2((b - b.mean()) * win)
    cross = fb * np.conj(fa)
    corr = np.fft.ifft2(cross / (np.abs(cross) + 1e-9)).real
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = corr.shape
    return float(dx - w if dx > w // 2 else dx), float(dy - h if dy > h // 2 else dy)
