"""Reproduce the acceleration table: PyTorch fp32 eager vs ONNX Runtime fp32 vs INT8 vs 50%
structured pruning (+ fine-tune) vs pruned + INT8, on a model trained on the built-in dataset.

    python benchmarks/accel.py                      # synth data, train r2plus1d_tiny (~4 min), all
    python benchmarks/accel.py --bundle RUN/best.vidlab --data DATA   # an existing bundle

Every figure is a ratio against PyTorch fp32 eager measured in the same run (interleaved
timing rounds, same thread count for every runtime). Prints a table, the bar checks, and
`--json` the raw rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, help="A trained bundle (default: train one).")
    ap.add_argument("--data", type=Path, help="Dataset folder/manifest (default: `vidlab data synth`).")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vidlab-bench-accel"))
    ap.add_argument("--model", default="r2plus1d_tiny")
    ap.add_argument("--per-class", type=int, default=40, help="Synthetic clips per class.")
    ap.add_argument("--train-minutes", type=float, default=5.0)
    ap.add_argument("--frames", type=int, default=8, help="Clip length the model is trained on.")
    ap.add_argument("--size", type=int, default=32, help="Crop size the model is trained on.")
    ap.add_argument("--train-threads", type=int, default=1,
                    help="PyTorch threads while training (1 copes best with a busy shared CPU).")
    ap.add_argument("--prune", type=float, default=0.5)
    ap.add_argument("--finetune-epochs", type=int, default=12)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="Training config override key.path=value (repeatable).")
    ap.add_argument("--threads", type=int, default=1,
                    help="Intra-op threads for every runtime (0: all cores). 1 by default: on a "
                         "shared, oversubscribed CPU two spinning threads per runtime measure "
                         "contention, not the model.")
    ap.add_argument("--rounds", type=int, default=7, help="Interleaved timing rounds.")
    ap.add_argument("--plot", type=Path, help="Speed-vs-accuracy PNG.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from vidlab.accel import plot_bench

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = args.data or synth_data(work / "data", args.per_class)
    bundle = args.bundle or train_bundle(work / "run", data, args.model, args.frames, args.size,
                                         args.train_minutes, args.overrides, args.train_threads)
    args.threads = args.threads or None
    rows, ort, pruned = optimize_and_bench(bundle, data, work, args.prune, args.finetune_epochs,
                                           args.threads, args.rounds)
    if args.plot:
        plot_bench(rows, args.plot)
    summary = _summary(rows, ort, pruned)
    summary["seconds"] = round(time.time() - t0)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=2))
    else:
        _print(rows, summary)


def synth_data(root: Path, per_class: int) -> Path:
    """The built-in dataset in `root` (made once)."""
    from vidlab.data.synth import synth

    if not (root / "dataset.json").is_file():
        synth(root, per_class=per_class, overwrite=True)
    return root


def train_bundle(run: Path, data: Path, model: str, frames: int, size: int, minutes: float,
                 overrides: list[str] = (), threads: int | None = 1) -> Path:
    """`run/best.vidlab`: `model` trained on `data` at frames × size² for `minutes` (reused when
    it exists)."""
    import torch

    from vidlab.config import apply_overrides
    from vidlab.train.config import TrainConfig
    from vidlab.train.run import fit

    best = run / "best.vidlab"
    if best.is_dir():
        return best
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    config = TrainConfig.model_validate(apply_overrides({
        "out": str(run), "dataset": {"path": str(data)}, "model": {"name": model},
        "data": {"num_frames": frames, "crop_size": size, "short_side": round(size * 8 / 7)},
        "train": {"epochs": 40, "max_minutes": minutes, "plots": False, "tensorboard": False}},
        list(overrides)))
    result = fit(config, overwrite=True)
    torch.set_num_threads(before)
    return result.bundle or best


def optimize_and_bench(bundle: Path, data: Path, work: Path, prune: float, finetune_epochs: int,
                       threads: int | None, rounds: int, bf16: bool | None = None):
    """(bench rows, ORT bundle, pruned bundle): `bundle` exported + INT8 (+ PyTorch bf16 where it
    is native, or as `bf16` says), and pruned + fine-tuned + INT8, all benched in one run. The
    first row is the source's PyTorch fp32 eager; duplicate fp32 eager rows are dropped."""
    from vidlab.accel import bench, optimize

    common = dict(data=data, threads=threads, timing_rounds=3, overwrite=True, bf16=bf16)
    ort = optimize(bundle, work / "ort.vidlab", onnx=True, int8=True, **common)
    pruned = optimize(bundle, work / "pruned.vidlab", onnx=True, int8=True, prune=prune,
                      finetune_epochs=finetune_epochs, **common)
    rows = bench([bundle, ort.path, pruned.path], data=data, rounds=rounds, threads=threads)
    # the source bundle's PyTorch model is row 0; the ORT bundle's PyTorch weights are the same
    rows = rows[:1] + [r for r in rows[1:] if r["bundle"] != str(Path(bundle))
                       and not (r["bundle"] == str(ort.path) and r["runtime"] == "torch")]
    return rows, ort, pruned


def _summary(rows: list[dict], ort, pruned) -> dict:
    base = rows[0]
    ok = [r for r in rows if r["top1"] is not None and r["top1"] >= base["top1"] - 0.01]
    best = min(ok, key=lambda r: r["latency_ms_p50"]) if ok else None
    pruned_eager = next(r for r in rows if r["bundle"] == str(pruned.path) and r["runtime"] == "torch")
    int8_size = ort.metrics["variants"]["onnx-int8"]["size_mb"]
    return {
        "baseline_top1": base["top1"],
        "best_variant": best and best["variant"], "best_speedup": best and best["speedup"],
        "best_top1_loss_points": best and 100 * (base["top1"] - best["top1"]),
        "bar_best_2_5x": bool(best and best["speedup"] >= 2.5),
        "pruned_eager_speedup": pruned_eager["speedup"],
        "pruned_top1_loss_points": 100 * (base["top1"] - pruned_eager["top1"]),
        "bar_pruned_1_6x": pruned_eager["speedup"] >= 1.6 and base["top1"] - pruned_eager["top1"] <= 0.01,
        "int8_size_ratio": base["size_mb"] / int8_size, "bar_int8_3_5x_smaller": base["size_mb"] / int8_size >= 3.5,
        "int8_method": ort.metrics["optimize"]["int8"]["chosen"],
        "int8_candidates": {m: round(c["speedup_vs_fp32"], 2) for m, c in
                            ort.metrics["optimize"]["int8"]["candidates"].items()},
        "onnx_max_abs_diff": ort.metrics["optimize"]["onnx"]["max_abs_diff"],
    }


def _print(rows: list[dict], summary: dict) -> None:
    base = rows[0]
    print(f"\n{'variant':46} {'p50 ms':>8} {'p95 ms':>8} {'speed-up':>8} {'clips/s@8':>9} "
          f"{'top-1':>6} {'Δ pts':>6} {'MB':>7} {'size÷':>6} {'RSS MB':>7}")
    for r in rows:
        d = 100 * (r["top1"] - base["top1"]) if r["top1"] is not None else float("nan")
        rss = r.get("peak_rss_mb") or float("nan")
        print(f"{r['variant'][:46]:46} {r['latency_ms_p50']:8.1f} {r['latency_ms_p95']:8.1f} "
              f"{r['speedup']:7.2f}× {r['throughput_clips_s'] or 0:9.1f} {100 * (r['top1'] or 0):6.1f} "
              f"{d:+6.1f} {r['size_mb']:7.2f} {base['size_mb'] / r['size_mb']:5.1f}× {rss:7.0f}")
    print("\n" + json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
