"""Inference acceleration: ONNX Runtime export, INT8 quantization, structured pruning, bench.

`optimize(bundle, out, ...)` turns a bundle into a faster one and stores every variant's measured
latency, size and accuracy in its metrics.json; `bench(bundles, data)` compares variants in one
run. torch and onnxruntime are imported inside the functions, so importing this package is cheap.
"""

from __future__ import annotations

from typing import Any

from vidlab.accel.compare import bench, plot_bench
from vidlab.accel.pipeline import optimize


def evaluate_runner(runner: Any, bundle: Any, entries: list[Any], limit: int | None = None) -> float | None:
    """Top-1 (0–1) of a runner on dataset entries, preprocessed exactly as the bundle says
    (one centred view per video, through `vidlab.train.evaluate`)."""
    from vidlab.accel.inputs import bundle_clips, top1

    return top1(runner, bundle_clips(bundle, entries, limit))["top1"]


__all__ = ["optimize", "bench", "plot_bench", "evaluate_runner"]
