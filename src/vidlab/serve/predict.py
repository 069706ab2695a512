"""Predict labels for video files with a bundle: the core shared by `vidlab predict` and the server.

`Predictor.decode` turns a file into preprocessed clips (one centre clip, or one per time window
for long videos: `vidlab.data.samplers.SlidingWindowSampler`, decoded by `vidlab.data.clips`)
plus the input statistics monitoring needs; `Predictor.probabilities` runs a batch through the
bundle's runtime. The server runs the two halves in different threads (decode in a pool,
inference in the micro-batcher); `predict_file` chains them with bounded memory.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.bundle import Bundle, load_bundle
from vidlab.data.clips import iter_views, open_video
from vidlab.data.samplers import ClipPlan, window_sampler
from vidlab.errors import BundleError, VideoTooLongError, VidlabError

log = logging.getLogger(__name__)

FEATURES = ("brightness", "contrast", "motion")
"""Per-clip input statistics (from `vidlab.data.stats.clip_features`), logged for drift checks."""


__all__ = ["DecodedVideo", "Predictor", "VideoTooLongError", "iter_predictions", "predict_files"]


@dataclass
class DecodedVideo:
    """A video ready for inference: its clips (`float32 N×C×T×H×W`) and what monitoring needs."""

    info: dict[str, Any]
    plans: list[ClipPlan]
    windowed: bool
    clips: list[np.ndarray] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    decode_s: float = 0.0


class Predictor:
    """A bundle's model with its preprocessing, on the chosen runtime ("auto" = fastest)."""

    def __init__(self, bundle: Bundle | str | Path, runtime: str = "auto",
                 device: str | None = None):
        from vidlab.runtime import load_runner

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.bundle.check_runnable()
        self.labels = self.bundle.labels
        self.preprocess = self.bundle.preprocess()
        # every runtime file is checked against config.json and the chosen one runs a clip;
        # with "auto", files that fail are reported here and skipped
        problems: list[BundleError] = []
        self.runner = load_runner(self.bundle, runtime, device, dry_run=True, skipped=problems)
        self.skipped_runtimes = [str(p) for p in problems]
        self.runtime = self.runner.name
        self.version = model_version(self.bundle)

    # --- decoding (thread-safe: no shared state) -------------------------------------------

    def open(self, path: str | Path, max_duration: float | None = None):
        """A reader at the model's short side and the video's facts (one file scan).

        Raises `VideoOpenError`/`VideoDecodeError` for unusable files and `VideoTooLongError`
        past `max_duration` seconds.
        """
        reader = open_video(path, self.preprocess, max_duration)
        info = reader.info.to_dict()
        info["path"] = str(path)
        return reader, info

    def plan(self, reader: Any, window: float | None, stride: float | None,
             max_clips: int | None = None) -> tuple[list[ClipPlan], bool]:
        """The clips to run (one centred view, or a timeline of windows) and whether they form
        a timeline."""
        sampler = window_sampler(self.preprocess, window, stride, max_clips)
        plans = sampler(len(reader), reader.fps, timestamps=reader.timestamps)
        return plans, sampler.windowed(len(reader), reader.fps)

    def iter_clips(self, reader: Any, plans: list[ClipPlan]
                   ) -> Iterator[tuple[int, np.ndarray, dict[str, float]]]:
        """Stream `(plan_number, float32 C×T×H×W clip, clip_features)` for each plan."""
        for i, frames in iter_views(reader, plans):
            yield i, self.preprocess(frames).numpy(), _clip_features(frames)

    def decode(self, path: str | Path, window: float | None = None, stride: float | None = None,
               max_duration: float | None = None, max_clips: int | None = None) -> DecodedVideo:
        """Probe and decode a whole video into its clips, in memory (at most `max_clips`)."""
        t0 = time.perf_counter()
        reader, info = self.open(path, max_duration)
        plans, windowed = self.plan(reader, window, stride, max_clips)
        out = DecodedVideo(info=info, plans=plans, windowed=windowed)
        out.clips = [np.empty(0)] * len(plans)
        feats = []
        for i, clip, f in self.iter_clips(reader, plans):
            out.clips[i] = clip
            feats.append(f)
        out.features = _mean_features(feats)
        out.decode_s = time.perf_counter() - t0
        return out

    # --- inference ------------------------------------------------------------------------

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax class probabilities for a `float32 B×C×T×H×W` batch."""
        logits = np.asarray(self.runner(np.ascontiguousarray(batch, np.float32)), np.float64)
        return softmax(logits)

    def predict_file(self, path: str | Path, top_k: int = 5, window: float | None = 2.0,
                     stride: float | None = 1.0, batch_size: int = 8) -> dict[str, Any]:
        """Top-k labels for a video and, when it is longer than `window` s, per window.

        Memory stays bounded whatever the video's length: frames are streamed and clips are run
        `batch_size` at a time, keeping only their probabilities.
        """
        t0 = time.perf_counter()
        reader, info = self.open(path)
        plans, windowed = self.plan(reader, window, stride)
        probs = np.zeros((len(plans), len(self.labels)))
        pending: list[tuple[int, np.ndarray]] = []
        feats: list[dict[str, float]] = []
        infer_s = 0.0

        def flush() -> None:
            nonlocal infer_s
            t = time.perf_counter()
            out = self.probabilities(np.stack([c for _, c in pending]))
            infer_s += time.perf_counter() - t
            for (i, _), p in zip(pending, out, strict=True):
                probs[i] = p
            pending.clear()

        for i, clip, f in self.iter_clips(reader, plans):
            pending.append((i, clip))
            feats.append(f)
            if len(pending) >= batch_size:
                flush()
        if pending:
            flush()
        result = self.result(str(path), plans, windowed, probs, top_k)
        total = time.perf_counter() - t0
        result.update(video=_video_summary(info), input=_mean_features(feats),
                      timing_ms={"total": round(total * 1e3, 2), "inference": round(infer_s * 1e3, 2),
                                 "decode": round((total - infer_s) * 1e3, 2)})
        return result

    def result(self, path: str, plans: list[ClipPlan], windowed: bool, probs: np.ndarray,
               top_k: int = 5) -> dict[str, Any]:
        """The `predict --json` record: `{path, top, windows, model, runtime}`."""
        windows = []
        if windowed:
            windows = [{"start": p.start, "end": p.end, "top": self.top(row, top_k)}
                       for p, row in zip(plans, probs, strict=True)]
        return {"path": path, "top": self.top(probs.mean(axis=0), top_k), "windows": windows,
                "model": self.version, "runtime": self.runtime}

    def top(self, probs: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The `k` most probable labels, most probable first."""
        k = max(1, min(int(k), len(self.labels)))
        order = np.argsort(-probs, kind="stable")[:k]
        return [{"label": self.labels[i], "prob": float(probs[i])} for i in order]


def iter_predictions(predictor: Predictor, paths: list[str | Path], top_k: int = 5,
                     window: float | None = 2.0, stride: float | None = 1.0
                     ) -> Iterator[tuple[dict[str, Any] | None, VidlabError | None]]:
    """`(result, None)` or `(None, error)` for each file in turn, as soon as it is done; a bad
    file never stops the rest."""
    for path in paths:
        try:
            yield predictor.predict_file(path, top_k, window, stride), None
        except VidlabError as exc:
            yield None, exc


def predict_files(predictor: Predictor, paths: list[str | Path], top_k: int = 5,
                  window: float | None = 2.0, stride: float | None = 1.0
                  ) -> tuple[list[dict[str, Any]], list[VidlabError]]:
    """Predict every file; a bad file becomes an error in the second list, never stops the rest."""
    results, errors = [], []
    for result, error in iter_predictions(predictor, paths, top_k, window, stride):
        if error is None:
            results.append(result)
        else:
            errors.append(error)
    return results, errors


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def model_version(bundle: Bundle) -> str:
    """`NAME@HASH`: the bundle's directory name and a digest of its config and model files."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in bundle.path.iterdir() if p.is_file()):
        if name in ("metrics.json", "data_stats.json"):
            continue  # updated by evaluation/optimisation without changing the model
        digest.update(name.encode())
        with open(bundle.path / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):  # noqa: B023
                digest.update(block)
    name = bundle.path.name.removesuffix(".vidlab")
    return f"{name}@{digest.hexdigest()[:12]}"


def _clip_features(clip: np.ndarray) -> dict[str, float]:
    """`clip_features` of the data stage, so serving statistics compare with training's."""
    from vidlab.data.stats import clip_features

    return {k: float(v) for k, v in clip_features(clip).items() if k in FEATURES}


def _mean_features(feats: list[dict[str, float]]) -> dict[str, float]:
    if not feats:
        return {}
    return {k: float(np.mean([f[k] for f in feats if k in f])) for k in feats[0]}


def _video_summary(info: dict[str, Any]) -> dict[str, Any]:
    keys = ("width", "height", "fps", "duration", "num_frames", "codec")
    return {k: info[k] for k in keys if k in info}
