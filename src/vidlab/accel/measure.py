"""Latency, throughput, file size and peak memory of a runner, measured the same way for all.

Latency on a shared, noisy CPU is only comparable inside one run: `time_runners` interleaves
the variants round by round, so a burst of load from another process hits them all alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Runner = Callable[[np.ndarray], np.ndarray]


def size_mb(path: str | Path) -> float:
    """Size of a file (or of all files in a directory) in MB (10^6 bytes)."""
    p = Path(path)
    total = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return total / 1e6


def time_runners(runners: dict[Any, Runner], example: np.ndarray | dict[Any, np.ndarray], rounds: int = 5,
                 iters_per_round: int = 4, warmup: int = 2,
                 throughput_batch: int = 8, throughput_iters: int = 2) -> dict[Any, dict[str, float]]:
    """Batch-1 latency p50/p95 (ms) and batch-`throughput_batch` throughput (clips/s) per runner.

    `example` is one preprocessed clip `1×C×T×H×W` (or a dict giving each runner its own).
    Variants are timed in interleaved rounds (see module docstring).
    """
    examples = example if isinstance(example, dict) else {k: example for k in runners}
    one = {k: np.ascontiguousarray(examples[k][:1], dtype=np.float32) for k in runners}
    many = {k: np.ascontiguousarray(np.repeat(one[k], throughput_batch, axis=0)) for k in runners}
    samples: dict[Any, list[float]] = {k: [] for k in runners}
    batch_times: dict[Any, list[float]] = {k: [] for k in runners}
    for name, run in runners.items():
        for _ in range(warmup):
            run(one[name])
        if throughput_iters:
            run(many[name])
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(iters_per_round):
                t0 = time.perf_counter()
                run(one[name])
                samples[name].append(time.perf_counter() - t0)
    for _ in range(throughput_iters):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run(many[name])
            batch_times[name].append(time.perf_counter() - t0)
    out = {}
    for name in runners:
        ms = np.asarray(samples[name]) * 1e3
        tput = throughput_batch / float(np.median(batch_times[name])) if batch_times[name] else None
        out[name] = {"latency_ms_p50": float(np.percentile(ms, 50)),
                     "latency_ms_p95": float(np.percentile(ms, 95)),
                     "throughput_clips_s": tput}
    return out


def peak_rss_mb(bundle_path: str | Path, runtime: str, input_shape: tuple[int, ...],
                batch: int = 8, timeout_s: float = 300, threads: int | None = None) -> float | None:
    """Peak resident memory (MB) of a fresh process that loads one runtime and runs a batch.

    Measured in a subprocess (`python -m vidlab.accel.rss`) so that variants do not share
    allocator pools; includes the interpreter, torch/onnxruntime libraries and the model.
    Returns None when the subprocess fails (the reason is logged, the bench goes on).
    """
    import logging

    cmd = [sys.executable, "-m", "vidlab.accel.rss", str(bundle_path), runtime,
           ",".join(str(d) for d in input_shape), str(batch), str(threads or 0)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"])
    except (subprocess.SubprocessError, ValueError, IndexError, KeyError) as exc:
        logging.getLogger(__name__).warning("peak RSS of %s/%s not measured: %s", bundle_path, runtime, exc)
        return None


def describe(stats: dict[str, Any]) -> str:
    """One-line human summary of a `time_runners` entry."""
    tput = stats.get("throughput_clips_s")
    return (f"p50 {stats['latency_ms_p50']:.1f} ms, p95 {stats['latency_ms_p95']:.1f} ms"
            + (f", {tput:.1f} clips/s" if tput else ""))
