"""How close vidlab gets to this machine's limits: training clips/s in fp32 and bf16 (and what
`amp: auto` picks), and (`--infer`) batch-1 latency and batch-8 throughput of every inference
variant (fp32 eager, ORT fp32, PyTorch bf16, INT8, pruned + INT8) with top-1 after a short
fine-tune on the built-in data at the model's input size, as fractions of the matmul peaks
measured in the same run.

    python benchmarks/hardware.py                               # R(2+1)D-18, X3D-S, r2plus1d_tiny
    python benchmarks/hardware.py --models r2plus1d_tiny --steps 3 --json
    python benchmarks/hardware.py --infer --train-minutes 20    # + fine-tune, optimize, bench

The fp32, bf16 and INT8 matmul peaks are measured at the start and at the end of the run (the
best of both is the fairer ceiling on a shared machine). Each model runs at its real input
(frames × size² of its card) with random clips already in memory, so the figure is the model's
ceiling, not the decoder's. A training step counts 3× the forward FLOPs of the model's FLOP card
(forward, and the two backward products of each layer). "auto" is what the trainer's start-up
probe (`vidlab.train.hardware.probe_bf16`) chooses for that model here, with its reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

DEFAULT_MODELS = "r2plus1d_18,x3d_s,r2plus1d_tiny"
BATCH = {"r2plus1d_18": 4, "x3d_s": 8}
"""Training batch per model (others: 16, the default recipe's)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--steps", type=int, default=4, help="Timed training steps per precision.")
    ap.add_argument("--threads", type=int, default=None, help="Intra-op threads (default: all).")
    ap.add_argument("--infer", action="store_true",
                    help="Also fine-tune each model on the built-in data, optimize and bench it.")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/vidlab-bench-hardware"))
    ap.add_argument("--per-class", type=int, default=40, help="Built-in clips per class.")
    ap.add_argument("--train-minutes", type=float, default=10.0, help="Fine-tune budget per model.")
    ap.add_argument("--prune", type=float, default=0.5)
    ap.add_argument("--finetune-epochs", type=int, default=4, help="After pruning (distilled).")
    ap.add_argument("--rounds", type=int, default=5, help="Interleaved timing rounds.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from vidlab.train.hardware import cpu_has_bf16, prepare_cpu
    from vidlab.train.peaks import matmul_peaks

    prepare_cpu()
    log(f"{torch.get_num_threads()} threads; bf16 units: {cpu_has_bf16()}")
    peaks = matmul_peaks()
    log(f"matmul peaks: {peaks}")
    rows = [train_row(name, args.steps) for name in args.models.split(",")]
    if args.infer:
        for row in rows:
            row["infer"] = infer_rows(row["model"], args)
    end = matmul_peaks()
    best = {k: max(v for v in (getattr(peaks, k), getattr(end, k)) if v is not None)
            if (getattr(peaks, k) or getattr(end, k)) else None for k in ("fp32", "bf16", "int8")}
    for row in rows:
        for p in ("fp32", "bf16", "auto"):
            r = row["train"].get(p)
            if r and best.get(r["precision"]):
                r["of_peak"] = round(r["gflops"] / best[r["precision"]], 4)
    result = {"threads": torch.get_num_threads(), "bf16_units": cpu_has_bf16(),
              "peaks_gflops": best, "int8_engine": end.int8_engine or peaks.int8_engine,
              "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)


def train_row(name: str, steps: int) -> dict[str, Any]:
    """Training clips/s of model `name` at its card's input in fp32, bf16 and `auto`."""
    from train import train_steps  # benchmarks/train.py: the same timed loop
    from vidlab.data.config import DataConfig
    from vidlab.models import create, model_entry
    from vidlab.models.flops import model_card
    from vidlab.train.bf16 import probe_bf16
    from vidlab.train.hardware import pick_precision, training_memory_format

    entry, card = model_entry(name), model_card(name)
    batch = BATCH.get(name, 16)
    shape = (batch, 3, entry.num_frames, entry.size, entry.size)
    model = create(name, num_classes=8, num_frames=entry.num_frames)
    data = DataConfig(num_frames=entry.num_frames, crop_size=entry.size,
                      short_side=round(entry.size * 8 / 7))
    fmt = training_memory_format(model, "auto", data, batch, torch.device("cpu"))
    model = model.to(memory_format=fmt)
    g = torch.Generator().manual_seed(0)
    batches = _repeat(torch.randn(*shape, generator=g), torch.arange(batch) % 8)
    row: dict[str, Any] = {"model": name, "input": f"{entry.num_frames}x{entry.size}x{entry.size}",
                           "batch": batch, "fwd_gflops": card["gflops"],
                           "memory_format": str(fmt).split(".")[-1], "train": {}}
    for precision, amp in (("fp32", None), ("bf16", torch.bfloat16)):
        cps = train_steps(model, batches, steps, fmt, amp=amp)
        row["train"][precision] = {"precision": precision, "clips_per_s": round(cps, 3),
                                   "gflops": round(3 * card["gflops"] * cps, 2)}
        log(f"{name} {precision}: {cps:.2f} clips/s")
    example = torch.randn(min(8, batch), *shape[1:], generator=g).contiguous(memory_format=fmt)
    chosen = pick_precision("auto", torch.device("cpu"), lambda: probe_bf16(model, example, 8))
    row["train"]["auto"] = {**row["train"][chosen.name], "reason": chosen.reason}
    log(f"{name} auto: {chosen.name} ({chosen.reason})")
    return row


def infer_rows(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """`name` fine-tuned on the built-in data at its card's input (`amp: auto`), then exported,
    quantized, pruned + quantized, with PyTorch bf16 beside them, all benched in one run."""
    from accel import optimize_and_bench, synth_data, train_bundle  # benchmarks/accel.py
    from vidlab.models import model_entry

    entry = model_entry(name)
    work = args.workdir / name
    data = synth_data(args.workdir / "data", args.per_class)
    bundle = train_bundle(work / "run", data, name, entry.num_frames, entry.size,
                          args.train_minutes, threads=args.threads)
    rows, _, _ = optimize_and_bench(bundle, data, work, args.prune, args.finetune_epochs,
                                    args.threads, args.rounds, bf16=True)
    keep = ("variant", "runtime", "precision", "latency_ms_p50", "throughput_clips_s", "speedup",
            "top1", "gflops_per_clip", "achieved_gflops", "of_peak", "size_mb")
    return [{k: r.get(k) for k in keep} for r in rows]


def _repeat(x: torch.Tensor, y: torch.Tensor):
    while True:
        yield x, y


def print_tables(result: dict[str, Any]) -> None:
    p = result["peaks_gflops"]
    print(f"{result['threads']} threads, bf16 units: {result['bf16_units']}; matmul peaks: fp32 "
          f"{_num(p['fp32'])} GFLOP/s, bf16 {_num(p['bf16'])} GFLOP/s, INT8 {_num(p['int8'])} "
          f"GOP/s ({result['int8_engine']})")
    print()
    print("| model | input, batch | fwd GFLOP/clip | fp32 clips/s (of fp32 peak) | "
          "bf16 clips/s (of bf16 peak) | bf16/fp32 | auto picks |")
    print("|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        t = r["train"]
        ratio = t["bf16"]["clips_per_s"] / max(t["fp32"]["clips_per_s"], 1e-12)
        print(f"| {r['model']} | {r['input']}, {r['batch']} | {r['fwd_gflops']} | "
              f"{t['fp32']['clips_per_s']} ({_pct(t['fp32'].get('of_peak'))}) | "
              f"{t['bf16']['clips_per_s']} ({_pct(t['bf16'].get('of_peak'))}) | {ratio:.2f}x | "
              f"{t['auto']['precision']} |")
    for r in result["rows"]:
        print(f"- {r['model']} auto: {r['train']['auto']['reason']}")
    for r in result["rows"]:
        if not r.get("infer"):
            continue
        base = r["infer"][0]
        print(f"\n{r['model']} {r['input']} inference (speed-up and top-1 change vs the first row)")
        print("| variant | precision | p50 ms @1 | speed-up | clips/s @8 | GFLOP/s @8 | of its peak "
              "| top-1 | Δ points |")
        print("|---|---|---|---|---|---|---|---|---|")
        for v in r["infer"]:
            delta = (100 * (v["top1"] - base["top1"]) if v["top1"] is not None
                     and base["top1"] is not None else None)
            print(f"| {v['variant']} | {v['precision']} | {v['latency_ms_p50']:.1f} | "
                  f"{v['speedup']:.2f}x | {v['throughput_clips_s'] or 0:.1f} | "
                  f"{v['achieved_gflops']:.1f} | {_pct(v['of_peak'])} | "
                  f"{_pct(v['top1'])} | {'n/a' if delta is None else f'{delta:+.1f}'} |")
        ok = [v for v in r["infer"] if v["top1"] is not None and base["top1"] is not None
              and v["top1"] >= base["top1"] - 0.01]
        if ok:
            best = max(ok, key=lambda v: v["speedup"])
            print(f"best within 1 point: {best['variant']}, {best['speedup']:.2f}x fp32 eager")


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
