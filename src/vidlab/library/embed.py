"""One video through a bundle's model, window by window: what the index stores for each window.

The windows are `predict`'s timeline — the same `Predictor.open/plan/iter_clips` (the
`SlidingWindowSampler` of `vidlab.data`, decoded by `vidlab.data.clips`), so a window of the
index is exactly a window of `vidlab predict --window W --stride S`. For each window the model
gives class probabilities and, from `forward_features`, an embedding (L2-normalized, so the
inner product is the cosine similarity). A bundle without PyTorch weights (ONNX only) has no
`forward_features`: its embedding is the probability vector, which finds moments of the same
predicted class but not finer likeness.

`index_file(path, settings)` is the per-file work of `index build`: a plain function of one
file and picklable settings, so any engine (processes here, Ray later) can spread it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.digest import file_sha256
from vidlab.errors import VidlabError


@dataclass(frozen=True)
class IndexSettings:
    """How every file of a library is indexed (picklable: sent to worker processes)."""

    bundle: str
    window: float = 2.0
    stride: float = 1.0
    top_k: int = 5
    runtime: str = "auto"
    batch_size: int = 8
    threads: int | None = None


@dataclass
class FileWindows:
    """The windows of one video: time spans, probabilities `N×C`, embeddings `N×D`."""

    path: str
    info: dict[str, Any]
    start: np.ndarray
    end: np.ndarray
    probs: np.ndarray
    embedding: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def rows(self, top_k: int) -> dict[str, Any]:
        """The columns `LibraryDB.put_video` stores: spans, top-1, top-k, embedding."""
        span_start, span_end = timeline_spans(self.start, self.end, float(self.info["duration"]))
        order = np.argsort(-self.probs, axis=1, kind="stable")[:, :max(1, top_k)]
        top = [[[int(k), round(float(row[k]), 6)] for k in ks]
               for ks, row in zip(order, self.probs, strict=True)]
        return {"start": self.start, "end": self.end, "span_start": span_start,
                "span_end": span_end, "label": order[:, 0],
                "prob": self.probs[np.arange(len(order)), order[:, 0]], "top": top,
                "embedding": self.embedding}


def timeline_spans(start: np.ndarray, end: np.ndarray, duration: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The part of the video each window stands for: from halfway to the previous window's
    centre to halfway to the next one's (the first from 0, the last to the end), so the spans
    tile the video and a run of windows of one label is a segment with sharp edges."""
    centre = (np.asarray(start, float) + np.asarray(end, float)) / 2
    cuts = (centre[1:] + centre[:-1]) / 2
    lo = np.concatenate([[0.0], cuts])
    hi = np.concatenate([cuts, [max(duration, float(np.max(end, initial=0.0)))]])
    return np.round(lo, 3), np.round(hi, 3)


class WindowModel:
    """A bundle's model over windows: probabilities and embeddings, batch by batch."""

    def __init__(self, bundle: str | Path, runtime: str = "auto", device: str | None = None,
                 threads: int | None = None):
        from vidlab.bundle import WEIGHTS_FILE, load_bundle
        from vidlab.serve.predict import Predictor

        loaded = load_bundle(bundle)
        # forward_features lives in the PyTorch model: prefer it whenever the weights are there
        if runtime == "auto" and loaded.has(WEIGHTS_FILE):
            runtime = "torch"
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.predictor = Predictor(loaded, runtime, device)
        self.model = getattr(self.predictor.runner, "model", None)
        self.embedding = "forward_features" if self.model is not None else "probabilities"

    @property
    def labels(self) -> list[str]:
        return self.predictor.labels

    @property
    def version(self) -> str:
        return self.predictor.version

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(probabilities B×C, L2-normalized embeddings B×D)` of a `float32 B×C×T×H×W` batch."""
        from vidlab.serve.predict import softmax

        if self.model is None:
            probs = self.predictor.probabilities(batch)
            return probs, normalize(probs)
        import torch

        device = self.predictor.runner.device  # type: ignore[attr-defined]
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(device)
            features = self.model.forward_features(x)
            logits = self.model.forward_head(features)
        probs = softmax(logits.float().cpu().numpy().astype(np.float64))
        return probs, normalize(features.float().cpu().numpy())

    def windows(self, path: str | Path, window: float, stride: float,
                batch_size: int = 8) -> FileWindows:
        """Every window of one video (memory bounded by a batch of clips)."""
        reader, info = self.predictor.open(path)
        info["embedding"] = self.embedding
        plans, _ = self.predictor.plan(reader, window, stride)
        probs: list[np.ndarray | None] = [None] * len(plans)
        embs: list[np.ndarray | None] = [None] * len(plans)
        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            p, e = self(np.stack([c for _, c in pending]))
            for (i, _), pi, ei in zip(pending, p, e, strict=True):
                probs[i], embs[i] = pi, ei
            pending.clear()

        for i, clip, _ in self.predictor.iter_clips(reader, plans):
            pending.append((i, clip))
            if len(pending) >= batch_size:
                flush()
        if pending:
            flush()
        return FileWindows(str(path), info, np.array([p.start for p in plans], float),
                           np.array([p.end for p in plans], float),
                           np.stack(probs).astype(np.float32),  # type: ignore[arg-type]
                           np.stack(embs).astype(np.float32))  # type: ignore[arg-type]

    def embed_range(self, path: str | Path, window: float, stride: float,
                    start: float | None = None, end: float | None = None) -> np.ndarray:
        """One query vector for `[start, end]` of a video: the normalized mean of the
        embeddings of its windows whose centre lies in the range (the nearest window when
        none does)."""
        found = self.windows(path, window, stride)
        return mean_embedding(found.start, found.end, found.embedding, start, end)


def mean_embedding(starts: np.ndarray, ends: np.ndarray, embedding: np.ndarray,
                   start: float | None, end: float | None) -> np.ndarray:
    """The normalized mean embedding of the windows centred in `[start, end]`."""
    centre = (np.asarray(starts) + np.asarray(ends)) / 2
    lo = -np.inf if start is None else start
    hi = np.inf if end is None else end
    inside = (centre >= lo) & (centre <= hi)
    if not inside.any():
        inside = np.zeros(len(centre), bool)
        inside[int(np.argmin(np.abs(centre - (lo if np.isfinite(lo) else hi))))] = True
    return normalize(embedding[inside].mean(axis=0, keepdims=True))[0]


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def file_facts(path: str | Path, with_hash: bool = True) -> dict[str, Any]:
    """Size, mtime and (optionally) the SHA-256 of a file's content."""
    st = os.stat(path)
    facts: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if with_hash:
        facts["sha256"] = file_sha256(path)
    return facts


_MODELS: dict[tuple[str, str, int | None], WindowModel] = {}


def window_model(settings: IndexSettings) -> WindowModel:
    """The process's model for these settings, loaded once (worker processes reuse it)."""
    key = (settings.bundle, settings.runtime, settings.threads)
    if key not in _MODELS:
        _MODELS[key] = WindowModel(settings.bundle, settings.runtime, threads=settings.threads)
    return _MODELS[key]


def index_file(path: str, settings: IndexSettings) -> FileWindows:
    """Index one video: its windows, probabilities and embeddings. A file that cannot be used
    comes back with `error` set (one line naming it), never as an exception."""
    try:
        return window_model(settings).windows(path, settings.window, settings.stride,
                                               settings.batch_size)
    except VidlabError as exc:
        return _failed(path, f"{type(exc).__name__}: {exc}")
    except (OSError, ValueError, RuntimeError) as exc:
        return _failed(path, f"{type(exc).__name__}: {path}: {exc}")


def _failed(path: str, error: str) -> FileWindows:
    empty = np.empty(0)
    return FileWindows(path, {}, empty, empty, np.empty((0, 0)), np.empty((0, 0)), error=error)
