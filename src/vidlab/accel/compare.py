"""`bench`: every runtime variant of one or more bundles, measured side by side in one run.

The first row is always the PyTorch fp32 eager model of the first bundle (the baseline every
speed-up is quoted against); then every runtime each bundle holds. Latencies are interleaved
across variants (see `measure.time_runners`); peak RSS comes from one fresh process per variant.
Each row also says how close it runs to the machine's limit: its model's FLOPs per clip times
its batch-8 throughput, against the matmul peak of the arithmetic it computes in (fp32, bf16 or
INT8), measured at the start of the same run with the same threads and device.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidlab.accel.inputs import VIEWS, bundle_clips, dataset_splits, top1
from vidlab.accel.measure import peak_rss_mb, size_mb, time_runners
from vidlab.bundle import Bundle, load_bundle
from vidlab.data.samplers import views_label
from vidlab.errors import BundleError

if TYPE_CHECKING:
    from vidlab.data.clips import ClipSet

DEFAULT_ROUNDS = 5
PEAK_SECONDS = 2.0
"""Seconds per arithmetic (fp32, bf16, INT8) spent timing the matmul peaks at the default rounds."""

_KIND = {"torch": "pytorch-fp32-eager", "torch-bf16": "pytorch-bf16-eager", "onnx": "onnx-fp32",
         "onnx-int8": "onnx-int8"}


def variant_name(bundle: Bundle, runtime: str) -> str:
    """A readable name: what was done to the model (pruning) + the runtime."""
    accel = bundle.config.get("accel") or {}
    kind = _KIND.get(runtime, runtime)
    if runtime == "onnx-int8" and accel.get("int8_method"):
        kind += f"({accel['int8_method']})"
    if accel.get("prune"):
        mode = "pruned" if accel.get("prune_mode") == "structured" else "sparse"
        ft = f"+ft{accel['finetune_epochs']}" if accel.get("finetune_epochs") else ""
        kind = f"{mode}{round(accel['prune'] * 100)}%{ft} {kind}"
    return kind


def bench(bundles: list[str | Path], data: str | Path | None = None, eval_clips: int | None = 256,
          rounds: int = DEFAULT_ROUNDS, rss: bool = True, threads: int | None = None,
          device: str | None = None) -> list[dict[str, Any]]:
    """Rows `{variant, runtime, bundle, latency_ms_p50, latency_ms_p95, throughput_clips_s,
    size_mb, top1, views, peak_rss_mb, speedup, precision, gflops_per_clip, achieved_gflops,
    peak_gflops, of_peak, peaks}`; `top1` (on the validation split, measured with `views`) is
    None without `data`; `peaks` are the fp32/bf16/INT8 matmul peaks of this run.

    `rounds` of interleaved latency timing (4 runs each); below the default 5, the matmul
    peaks are timed for proportionally less than `PEAK_SECONDS` per arithmetic too.
    `threads` (default: all cores) is used by every variant alike, PyTorch and ONNX Runtime;
    `device` (default: CUDA when present) runs PyTorch there and ONNX Runtime through its
    TensorRT/CUDA providers when installed.
    """
    import torch

    from vidlab.models.flops import count_gflops
    from vidlab.runtime import PRECISIONS, RUNTIME_FILES, available_runtimes, load_runner
    from vidlab.train.peaks import fraction_of_peak, matmul_peaks

    if not bundles:
        raise BundleError("bench needs at least one bundle")
    loaded = [load_bundle(b) for b in bundles]
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if threads:
        torch.set_num_threads(threads)
    # before the variants load: the machine as they will find it; a quick bench (fewer
    # rounds) times the peaks for proportionally less long too
    peaks = matmul_peaks(dev, seconds=PEAK_SECONDS * min(rounds, DEFAULT_ROUNDS) / DEFAULT_ROUNDS)
    if "torch" not in available_runtimes(loaded[0], dev):
        raise BundleError("the first bundle needs PyTorch weights for the fp32 eager baseline",
                          loaded[0].path)
    plan = [(loaded[0], "torch")]
    for b in loaded:
        plan += [(b, rt) for rt in available_runtimes(b, dev) if (b, rt) != (loaded[0], "torch")]
    clip_sets: dict[str, ClipSet] = {}
    inputs, runners = {}, {}
    for i, (b, rt) in enumerate(plan):
        key = json.dumps(b.preprocess_spec, sort_keys=True)
        if key not in clip_sets:
            clip_sets[key] = (bundle_clips(b, dataset_splits(b, data).val, eval_clips)
                              if data is not None else _random_clip(b))
        inputs[i] = clip_sets[key]
        runners[i] = load_runner(b, rt, device=dev, threads=threads)
    timing = time_runners(runners, {i: c.clips[:1] for i, c in inputs.items()}, rounds=rounds,
                          throughput_iters=min(2, rounds))
    gflops = {str(b.path): _gflops(b, count_gflops) for b in loaded}
    rows = []
    for i, (b, rt) in enumerate(plan):
        precision = PRECISIONS[rt]
        per_clip = gflops[str(b.path)]
        achieved = per_clip * (timing[i]["throughput_clips_s"] or 0)
        rows.append({
            "variant": variant_name(b, rt), "runtime": rt, "bundle": str(b.path),
            **timing[i], "size_mb": size_mb(b.file(RUNTIME_FILES[rt])),
            "precision": precision, "gflops_per_clip": per_clip, "achieved_gflops": achieved,
            "peak_gflops": peaks.for_precision(precision),
            "of_peak": fraction_of_peak(achieved, peaks.for_precision(precision)),
            "peaks": peaks.to_dict(), "device": dev,
            **(top1(runners[i], inputs[i]) if data is not None
               else {"top1": None, "views": views_label(VIEWS)}),
            "peak_rss_mb": peak_rss_mb(b.path, rt, inputs[i].clips.shape[1:], threads=threads)
            if rss else None, "threads": threads or _cores(),
        })
    base = rows[0]["latency_ms_p50"]
    for row in rows:
        row["speedup"] = base / row["latency_ms_p50"]
    return rows


def _gflops(bundle: Bundle, count) -> float:
    """GFLOPs of one clip through the bundle's model at its input (a pruned model counts what
    it kept)."""
    pre = bundle.preprocess()
    return count(bundle.build_model(), pre.num_frames, pre.crop_size)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _random_clip(bundle: Bundle) -> ClipSet:
    """Timing-only input of the bundle's shape (no data given: no accuracy either)."""
    from vidlab.data.clips import ClipSet

    pre = bundle.preprocess()
    x = np.random.default_rng(0).standard_normal((1, 3, pre.num_frames, pre.crop_size, pre.crop_size))
    return ClipSet(x.astype(np.float32), np.asarray([-1]), np.asarray([0]), ["<random>"],
                   bundle.labels)


def plot_bench(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Speed vs accuracy: batch-1 latency (x, log) against top-1 (y); latency bars without top-1."""
    import matplotlib.ticker

    from vidlab.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if all(r["top1"] is not None for r in rows):
        for i, r in enumerate(rows):
            ax.scatter(r["latency_ms_p50"], r["top1"] * 100, s=20 + 4 * r["size_mb"] ** 0.5 * 10)
            # staggered labels: variants often share an accuracy and sit close in latency
            ax.annotate(f"{r['variant']}\n{r['speedup']:.2f}×, {r['size_mb']:.1f} MB",
                        (r["latency_ms_p50"], r["top1"] * 100), fontsize=7,
                        xytext=(4, 4 - 22 * (i % 3)), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.margins(x=0.25, y=0.15)
        ax.set_xlabel("batch-1 latency p50 (ms, log scale; left is faster)")
        ax.set_ylabel("top-1 on the validation split (%)")
    else:
        names = [r["variant"] for r in rows]
        ax.barh(names, [r["latency_ms_p50"] for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("batch-1 latency p50 (ms)")
    ax.set_title("vidlab bench: speed vs accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
